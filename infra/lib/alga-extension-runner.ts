// The AlgaExtensionRunner construct: the same deployment as ../../template.yaml (SAM), with
// the template's parameters as props. Keep the two in step (docs/deploying.md).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArnFormat, Duration, Fn, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as authorizers from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import * as integrations from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as lambdaEvents from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as snsSubs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** The four functions, by their key in the props. */
export type AlgaFunctionKey = 'execute' | 'uiAssets' | 'publish' | 'events';

/** The cargo binary (and cargo-lambda output folder) of each function. */
export const FUNCTION_BINARIES: Record<AlgaFunctionKey, string> = {
  execute: 'fn-execute',
  uiAssets: 'fn-ui-assets',
  publish: 'fn-publish',
  events: 'fn-events',
};

/** Size, time and code of one function. */
export interface AlgaFunctionOptions {
  /** Memory in MB (also buys CPU). */
  readonly memorySize?: number;
  /** Timeout. */
  readonly timeout?: Duration;
  /** Reserved concurrency; unset leaves the function unreserved. */
  readonly reservedConcurrency?: number;
  /**
   * The bootstrap: a folder holding `bootstrap`, a `.zip` of it, or any `lambda.Code`.
   * @default `<lambdaDir>/<binary>/` (cargo-lambda's output, e.g. target/lambda/fn-execute/)
   */
  readonly code?: string | lambda.Code;
}

/** Props of {@link AlgaExtensionRunner}; each mirrors a parameter of template.yaml. */
export interface AlgaExtensionRunnerProps {
  /** CPU architecture of all four functions; must match the build. @default X86_64 */
  readonly architecture?: lambda.Architecture;
  /** The execute function. @default 1024 MB, 30 s, unreserved */
  readonly execute?: AlgaFunctionOptions;
  /** The ui-assets function. @default 256 MB, 10 s, unreserved */
  readonly uiAssets?: AlgaFunctionOptions;
  /** The publish function. @default 3008 MB, 300 s, unreserved */
  readonly publish?: AlgaFunctionOptions;
  /** The events function. @default 512 MB, 60 s, unreserved */
  readonly events?: AlgaFunctionOptions;
  /**
   * Folder with one cargo-lambda output folder per binary, used where a function has no `code`.
   * @default `$CARGO_TARGET_DIR/lambda`, else `<repo>/target/lambda` (infra/../target/lambda)
   */
  readonly lambdaDir?: string;
  /**
   * How POST /v1/execute is authenticated: service token header, API Gateway IAM, or `private`
   * (no credential: the route moves to a PRIVATE REST API that only `hostAppVpcEndpointId`
   * reaches, and the function checks the endpoint again). @default 'token'
   */
  readonly executeAuth?: 'token' | 'iam' | 'private';
  /** With executeAuth 'private' (required then): the host app's execute-api VPC endpoint id (vpce-...). */
  readonly hostAppVpcEndpointId?: string;
  /**
   * Who names the install a POST /v1/execute request runs as: our registry, or the caller's
   * request context (as the Alga runner takes it; the bundle must still be published and trusted).
   * @default 'registry'
   */
  readonly installSource?: 'registry' | 'caller';
  /**
   * The host app's base URL (Alga: its server; Alga's runner calls it STORAGE_API_BASE_URL): the
   * guests' clients / services / invoicing bridges and ui-proxy, the ext-ui install check when
   * installSource is 'caller' (required then), and the host-kept stores. The runner service token
   * is the bridge credential. @default unset (no host API)
   */
  readonly hostAppApiBase?: string;
  /** Base URL of ui-proxy calls (Alga's UI_PROXY_BASE_URL). @default hostAppApiBase */
  readonly hostAppUiProxyBase?: string;
  /** With installSource 'caller': the runner's key for the host app's public API (Alga's ALGA_AUTH_KEY), x-api-key of the ext-ui install check. */
  readonly hostAppApiKeySecret?: secretsmanager.ISecret;
  /**
   * Guest stores the host app keeps (Alga's ext-storage / ext-scheduler); with 'schedules' it fires
   * them too, so nothing is mirrored to EventBridge Scheduler. Needs hostAppApiBase. @default none
   */
  readonly hostStores?: Array<'kv' | 'schedules'>;
  /** Vault's address, for vault-transit:v1 secret envelopes. @default unset (refused) */
  readonly vaultAddr?: string;
  /** The secret holding the Vault token (transit decrypt only). */
  readonly vaultTokenSecret?: secretsmanager.ISecret;
  /** Issuer (https URL) of the JWTs on ANY /api/ext/{extensionId}/{proxy+}. */
  readonly jwtIssuer: string;
  /** Accepted audiences of those JWTs. */
  readonly jwtAudience: string[];
  /** JWT claim naming the tenant (ALGA_TENANT_CLAIM). @default 'tenant_id' */
  readonly tenantClaim?: string;
  /** JWT claim naming the user (ALGA_USER_CLAIM). @default 'sub' */
  readonly userClaim?: string;
  /** Inline JSON trust bundle (SIGNING_TRUST_BUNDLE). @default trusts no key */
  readonly signingTrustBundle?: string;
  /**
   * Which bundles publish and run (ALGA_BUNDLE_TRUST): `signature`, or `host-pinned` (also
   * unsigned bundles of Alga's bundle-store layout whose key, bundle.sha256 sidecar and bytes
   * agree; then only `hostAppWriterArn` and publish may write the upload bucket). @default 'signature'
   */
  readonly bundleTrust?: 'signature' | 'host-pinned';
  /** With bundleTrust 'host-pinned' (required then): the host app's IAM role or user that writes bundles. */
  readonly hostAppWriterArn?: string;
  /** Name prefix of the per-install secrets execute may read. @default 'alga/' */
  readonly secretsPrefix?: string;
  /** Upload bucket key prefix whose new objects trigger publish. @default 'uploads/' */
  readonly uploadPrefix?: string;
  /** ALGA_QUOTA_PER_MINUTE. @default 600 */
  readonly quotaPerMinute?: number;
  /** ALGA_QUOTA_PER_DAY. @default 100000 */
  readonly quotaPerDay?: number;
  /** EXT_EGRESS_ALLOWLIST; empty denies all outbound HTTP. @default unset */
  readonly egressAllowlist?: string;
  /** EXT_UI_FRAME_ANCESTORS of extension UIs. @default unset */
  readonly uiFrameAncestors?: string;
  /**
   * EventBridge bus (name) the events rule listens on and extensions' emit publishes to
   * (ALGA_EVENT_BUS); it must exist. @default 'default'
   */
  readonly eventBusName?: string;
  /**
   * EventBridge `source` values routed to the events queue, besides the prefix
   * `alga.extension/` that extensions' emitted events carry. @default ['alga.psa']
   */
  readonly eventSources?: string[];
  /** Visibility timeout of the events queue; at least 6x the events timeout. @default 360 s */
  readonly eventsQueueVisibilityTimeout?: Duration;
  /** Receives before an event message moves to the dead-letter queue. @default 5 */
  readonly eventsMaxReceiveCount?: number;
  /** EventBridge Scheduler group of extensions' schedules (ALGA_SCHEDULER_GROUP). @default the stack name */
  readonly scheduleGroupName?: string;
  /** Retention of the functions' and the API's log groups. @default ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** E-mail subscribed to the alarm topic. @default none */
  readonly alarmEmail?: string;
  /** What happens to the buckets and the table when the stack goes. @default RETAIN */
  readonly dataRemovalPolicy?: RemovalPolicy;
}

const DEFAULTS: Record<AlgaFunctionKey, { memorySize: number; timeout: Duration; reservedConcurrency?: number }> = {
  execute: { memorySize: 1024, timeout: Duration.seconds(30) },
  uiAssets: { memorySize: 256, timeout: Duration.seconds(10) },
  publish: { memorySize: 3008, timeout: Duration.seconds(300) },
  events: { memorySize: 512, timeout: Duration.seconds(60) },
};

const TABLE_READ = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'];
const TABLE_WRITE = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem'];
const PUBLISHED_PREFIXES = ['bundles/', 'ui/', 'artifacts/'];
/** Alga's bundle-store layout (sha256/<hex>/, tenants/<t>/extensions/<id>/sha256/<hex>/), at the upload bucket's root. */
const ALGA_STORE_PREFIXES = ['sha256/', 'tenants/'];
/** `source` of every event an extension emits: `alga.extension/<extension id>`. */
const EXTENSION_SOURCE_PREFIX = 'alga.extension/';

/** Where cargo-lambda leaves the binaries when no `lambdaDir` is given. */
export function defaultLambdaDir(): string {
  const target = process.env.CARGO_TARGET_DIR ?? path.resolve(__dirname, '..', '..', 'target');
  return path.join(target, 'lambda');
}

/**
 * alga-lambda on AWS: execute behind an HTTP API, ui-assets behind CloudFront, publish on
 * uploads and POST /v1/publish, events fed by EventBridge through SQS; S3, DynamoDB, Secrets
 * Manager, alarms; one least-privilege role per function.
 */
export class AlgaExtensionRunner extends Construct {
  /** The four functions. */
  readonly functions: Record<AlgaFunctionKey, lambda.Function>;
  /** ALGA_BUCKET: bundles/, ui/, artifacts/. */
  readonly bucket: s3.Bucket;
  /** ALGA_UPLOAD_BUCKET. */
  readonly uploadBucket: s3.Bucket;
  /** ALGA_TABLE. */
  readonly table: dynamodb.Table;
  /** The HTTP API (POST /v1/execute unless private, ANY /api/ext/..., POST /v1/publish). */
  readonly httpApi: apigwv2.HttpApi;
  /** With executeAuth 'private': the PRIVATE REST API serving POST /v1/execute. */
  readonly privateExecuteApi?: apigw.RestApi;
  /** CloudFront in front of ui-assets. */
  readonly distribution: cloudfront.Distribution;
  /** Queue fed by the EventBridge rule, and its dead-letter queue. */
  readonly eventsQueue: sqs.Queue;
  /** Dead-letter queue of the events queue. */
  readonly eventsDeadLetterQueue: sqs.Queue;
  /** ALGA_EVENTS_DLQ_URL: the events function's dead letters, each with its reason. */
  readonly deliveryDeadLetterQueue: sqs.Queue;
  /** The rule feeding the events queue. */
  readonly eventsRule: events.Rule;
  /** ALGA_SCHEDULER_GROUP: the EventBridge Scheduler group of extensions' schedules. */
  readonly scheduleGroup: scheduler.CfnScheduleGroup;
  /** ALGA_SCHEDULER_ROLE_ARN: the role EventBridge Scheduler assumes to invoke events. */
  readonly schedulerRole: iam.Role;
  /** The generated x-runner-service-token. */
  readonly runnerServiceTokenSecret: secretsmanager.Secret;
  /** The generated POST /v1/publish operator token. */
  readonly publishTokenSecret: secretsmanager.Secret;
  /** Topic of every alarm. */
  readonly alarmTopic: sns.Topic;
  /** Every alarm, by name. */
  readonly alarms: Record<string, cloudwatch.Alarm>;

  constructor(scope: Construct, id: string, props: AlgaExtensionRunnerProps) {
    super(scope, id);
    if (!/^https:\/\/.+/.test(props.jwtIssuer)) {
      throw new Error(`AlgaExtensionRunner: jwtIssuer must be an https URL, got '${props.jwtIssuer}'`);
    }
    if (props.jwtAudience.length === 0) {
      throw new Error('AlgaExtensionRunner: jwtAudience needs at least one audience');
    }
    const bundleTrust = props.bundleTrust ?? 'signature';
    if (bundleTrust === 'host-pinned' && !/^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)\/.+/.test(props.hostAppWriterArn ?? '')) {
      throw new Error(
        `AlgaExtensionRunner: bundleTrust 'host-pinned' needs hostAppWriterArn (an IAM role or user ARN), got '${props.hostAppWriterArn ?? ''}'`,
      );
    }
    const privateExecute = props.executeAuth === 'private';
    if (privateExecute && !/^vpce-[0-9a-f]{8,17}$/.test(props.hostAppVpcEndpointId ?? '')) {
      throw new Error(
        `AlgaExtensionRunner: executeAuth 'private' needs hostAppVpcEndpointId (vpce-...), got '${props.hostAppVpcEndpointId ?? ''}'`,
      );
    }
    const hostStores = [...new Set(props.hostStores ?? [])].sort();
    if ((props.installSource === 'caller' || hostStores.length > 0) && !/^https?:\/\/\S+$/.test(props.hostAppApiBase ?? '')) {
      throw new Error(
        `AlgaExtensionRunner: installSource 'caller' and hostStores need hostAppApiBase (an http(s) URL), got '${props.hostAppApiBase ?? ''}'`,
      );
    }
    const hostKeepsSchedules = hostStores.includes('schedules');
    const stack = Stack.of(this);
    const dataRemoval = props.dataRemovalPolicy ?? RemovalPolicy.RETAIN;
    const secretsPrefix = props.secretsPrefix ?? 'alga/';
    const uploadPrefix = props.uploadPrefix ?? 'uploads/';
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const architecture = props.architecture ?? lambda.Architecture.X86_64;
    const trustBundle = props.signingTrustBundle ?? '{"keys":[],"revoked":[]}';

    // ------------------------------------------------------------ storage
    const bucketProps: s3.BucketProps = {
      encryption: s3.BucketEncryption.S3_MANAGED,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: dataRemoval,
    };
    this.bucket = new s3.Bucket(this, 'AlgaBucket', {
      ...bucketProps,
      lifecycleRules: [{ id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) }],
    });
    this.uploadBucket = new s3.Bucket(this, 'UploadBucket', {
      ...bucketProps,
      lifecycleRules: [
        {
          id: 'expire-uploads',
          prefix: uploadPrefix,
          expiration: Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
    });

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'ttl',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: dataRemoval,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: 'gsi1',
      partitionKey: { name: 'gsi1pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'gsi1sk', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });

    const generated = { passwordLength: 48, excludePunctuation: true };
    this.runnerServiceTokenSecret = new secretsmanager.Secret(this, 'RunnerServiceTokenSecret', {
      description: 'Service token for POST /v1/execute (header x-runner-service-token).',
      generateSecretString: generated,
    });
    this.publishTokenSecret = new secretsmanager.Secret(this, 'PublishTokenSecret', {
      description: 'Operator token for POST /v1/publish.',
      generateSecretString: generated,
    });

    // ------------------------------------------------------------ events plumbing
    this.eventsDeadLetterQueue = new sqs.Queue(this, 'EventsDeadLetterQueue', {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    this.eventsQueue = new sqs.Queue(this, 'EventsQueue', {
      visibilityTimeout: props.eventsQueueVisibilityTimeout ?? Duration.seconds(360),
      retentionPeriod: Duration.days(4),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.eventsDeadLetterQueue, maxReceiveCount: props.eventsMaxReceiveCount ?? 5 },
    });
    // Reasoned dead letters: the events function sends one JSON record (event, extension,
    // handler, attempts, reason) per subscription that failed for good. Not the redrive DLQ
    // above: that one holds raw EventBridge messages that can be redriven into the queue.
    this.deliveryDeadLetterQueue = new sqs.Queue(this, 'DeliveryDeadLetterQueue', {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    const eventBusName = props.eventBusName ?? 'default';
    this.eventsRule = new events.Rule(this, 'EventsRule', {
      description: "Host events and extensions' emitted events, to the events queue.",
      eventBus: eventBusName === 'default' ? undefined : events.EventBus.fromEventBusName(this, 'EventBus', eventBusName),
      // A host source, or an extension's (alga.extension/<extension id>).
      eventPattern: { source: events.Match.anyOf(...(props.eventSources ?? ['alga.psa']), events.Match.prefix(EXTENSION_SOURCE_PREFIX)) },
      targets: [new eventTargets.SqsQueue(this.eventsQueue)],
    });
    const eventBusArn = stack.formatArn({ service: 'events', resource: 'event-bus', resourceName: eventBusName });

    // ------------------------------------------------------------ schedules
    // Extensions' schedules live in this group, are created by execute and events (the
    // scheduler host API) and fire the events function through the role below.
    const scheduleGroupName = props.scheduleGroupName ?? stack.stackName;
    if (!Token.isUnresolved(scheduleGroupName) && !/^[0-9a-zA-Z._-]{1,64}$/.test(scheduleGroupName)) {
      throw new Error(
        `AlgaExtensionRunner: schedule group name '${scheduleGroupName}' must be 1-64 of [0-9a-zA-Z._-]` +
          (props.scheduleGroupName === undefined ? ' (it defaults to the stack name; set scheduleGroupName)' : ''),
      );
    }
    this.scheduleGroup = new scheduler.CfnScheduleGroup(this, 'ScheduleGroup', { name: scheduleGroupName });
    // A fixed name for events, so its ARN can be written without referring to the function:
    // the function's own environment and the scheduler role's policy need it (a GetAtt would
    // be a cycle).
    const eventsFunctionName = Fn.join('', ['alga-events-', Fn.select(2, Fn.split('/', stack.stackId))]);
    const eventsFunctionArn = stack.formatArn({
      service: 'lambda',
      resource: 'function',
      resourceName: eventsFunctionName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.schedulerRole = new iam.Role(this, 'SchedulerInvokeRole', {
      // Only schedules of this account (confused-deputy guard).
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: 'alga-lambda: EventBridge Scheduler invokes the events function',
      inlinePolicies: {
        'invoke-events': new iam.PolicyDocument({
          statements: [new iam.PolicyStatement({ sid: 'InvokeEventsFunction', actions: ['lambda:InvokeFunction'], resources: [eventsFunctionArn] })],
        }),
      },
    });
    const schedulerEnv = {
      ALGA_EVENT_BUS: eventBusName,
      // The host app fires the schedules it keeps: no EventBridge Scheduler mirror then.
      ALGA_SCHEDULER_TARGET_ARN: hostKeepsSchedules ? undefined : eventsFunctionArn,
      ALGA_SCHEDULER_ROLE_ARN: this.schedulerRole.roleArn,
      ALGA_SCHEDULER_GROUP: this.scheduleGroup.ref,
    };

    // ------------------------------------------------------------ functions
    const lambdaDir = props.lambdaDir ?? defaultLambdaDir();
    const makeFunction = (
      key: AlgaFunctionKey,
      id: string,
      description: string,
      environment: Record<string, string | undefined>,
      functionName?: string,
    ): lambda.Function => {
      const options = props[key] ?? {};
      const defaults = DEFAULTS[key];
      const logGroup = new logs.LogGroup(this, `${id}LogGroup`, {
        retention: logRetention,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      // Our own role: the default one carries AWSLambdaBasicExecutionRole (logs on every group).
      const role = new iam.Role(this, `${id}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `alga-lambda ${FUNCTION_BINARIES[key]}: least privilege`,
      });
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'WriteOwnLogs',
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          resources: [logGroup.logGroupArn],
        }),
      );
      const env: Record<string, string> = {
        ALGA_BACKEND: 'aws',
        ALGA_BUCKET: this.bucket.bucketName,
        ALGA_TABLE: this.table.tableName,
      };
      for (const [name, value] of Object.entries(environment)) {
        if (value !== undefined && value !== '') env[name] = value;
      }
      return new lambda.Function(this, id, {
        description,
        functionName,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        handler: 'bootstrap',
        code: resolveCode(key, options.code, lambdaDir),
        architecture,
        memorySize: options.memorySize ?? defaults.memorySize,
        timeout: options.timeout ?? defaults.timeout,
        reservedConcurrentExecutions: options.reservedConcurrency ?? defaults.reservedConcurrency,
        tracing: lambda.Tracing.ACTIVE,
        loggingFormat: lambda.LoggingFormat.JSON,
        logGroup,
        role,
        environment: env,
      });
    };

    const uiAssets = makeFunction(
      'uiAssets',
      'UiAssetsFunction',
      'GET|HEAD /ext-ui/{extensionId}/{contentHash}/{path}, origin of the UI distribution',
      {
        EXT_UI_FRAME_ANCESTORS: props.uiFrameAncestors,
        // caller: the host app owns the installs, so ext-ui asks it (installs/validate).
        ALGA_INSTALL_SOURCE: props.installSource ?? 'registry',
        ALGA_HOST_API_BASE: props.installSource === 'caller' ? props.hostAppApiBase : undefined,
        ALGA_HOST_API_KEY_SECRET_ID: props.hostAppApiKeySecret?.secretArn,
      },
    );
    this.distribution = this.makeDistribution(uiAssets);

    // What a function needs to run guests (execute and events).
    const guestEnv = {
      ALGA_SECRETS_PREFIX: secretsPrefix,
      ALGA_QUOTA_PER_MINUTE: String(props.quotaPerMinute ?? 600),
      ALGA_QUOTA_PER_DAY: String(props.quotaPerDay ?? 100000),
      SIGNING_TRUST_BUNDLE: trustBundle,
      ALGA_BUNDLE_TRUST: bundleTrust,
      ALGA_ARTIFACT_CACHE_DIR: '/tmp/alga-artifacts',
      EXT_EGRESS_ALLOWLIST: props.egressAllowlist,
      // The host app's API; the bridge credential is the runner service token (read at cold start).
      ALGA_HOST_API_BASE: props.hostAppApiBase,
      ALGA_UI_PROXY_BASE: props.hostAppUiProxyBase,
      ALGA_HOST_API_BRIDGE_TOKEN_SECRET_ID: props.hostAppApiBase ? this.runnerServiceTokenSecret.secretArn : undefined,
      ALGA_HOST_STORES: hostStores.length > 0 ? hostStores.join(',') : undefined,
      ...schedulerEnv,
    };
    const execute = makeFunction('execute', 'ExecuteFunction', 'POST /v1/execute and ANY /api/ext/{extensionId}/{proxy+}', {
      ALGA_EXECUTE_AUTH: props.executeAuth ?? 'token',
      ALGA_EXECUTE_VPC_ENDPOINT_IDS: privateExecute ? props.hostAppVpcEndpointId : undefined,
      ALGA_INSTALL_SOURCE: props.installSource ?? 'registry',
      RUNNER_SERVICE_TOKEN_SECRET_ID: this.runnerServiceTokenSecret.secretArn,
      ALGA_VAULT_ADDR: props.vaultAddr,
      ALGA_VAULT_TOKEN_SECRET_ID: props.vaultTokenSecret?.secretArn,
      ALGA_TENANT_CLAIM: props.tenantClaim ?? 'tenant_id',
      ALGA_USER_CLAIM: props.userClaim ?? 'sub',
      RUNNER_PUBLIC_BASE: `https://${this.distribution.distributionDomainName}`,
      ...guestEnv,
    });
    const publish = makeFunction('publish', 'PublishFunction', 'S3 uploads and POST /v1/publish -> verify, precompile, register', {
      ALGA_UPLOAD_BUCKET: this.uploadBucket.bucketName,
      ALGA_UPLOAD_PREFIX: uploadPrefix,
      ALGA_PUBLISH_TOKEN_SECRET_ID: this.publishTokenSecret.secretArn,
      SIGNING_TRUST_BUNDLE: trustBundle,
      ALGA_BUNDLE_TRUST: bundleTrust,
    });
    const eventsFn = makeFunction(
      'events',
      'EventsFunction',
      'EventBridge -> SQS, and schedule firings -> subscribed installs',
      { ...guestEnv, ALGA_EVENTS_DLQ_URL: this.deliveryDeadLetterQueue.queueUrl },
      eventsFunctionName,
    );
    this.functions = { execute, uiAssets, publish, events: eventsFn };

    // ------------------------------------------------------------ least privilege
    const objects = (bucket: s3.IBucket, prefixes: string[]) => prefixes.map((p) => bucket.arnForObjects(`${p}*`));
    const tableResources = [this.table.tableArn, `${this.table.tableArn}/index/*`];
    // ListBucket makes a missing key a 404 (artifact_missing) rather than a 403.
    const listAlga = new iam.PolicyStatement({ sid: 'ListForMissingKeys', actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] });

    const installSecrets = stack.formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `${secretsPrefix}*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    // What running a guest takes, for execute and events: read what publish wrote (never a
    // write in S3), emit events under the extensions' own source prefix only (a guest cannot
    // pose as the host app), manage schedules in the group and pass only the scheduler role.
    const guestRunner = (fn: lambda.Function) => {
      fn.addToRolePolicy(
        new iam.PolicyStatement({ sid: 'ReadBundlesUiArtifacts', actions: ['s3:GetObject'], resources: objects(this.bucket, PUBLISHED_PREFIXES) }),
      );
      fn.addToRolePolicy(listAlga);
      fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'TableReadWrite', actions: [...TABLE_READ, ...TABLE_WRITE], resources: tableResources }));
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'EmitExtensionEvents',
          actions: ['events:PutEvents'],
          resources: [eventBusArn],
          conditions: { StringLike: { 'events:source': `${EXTENSION_SOURCE_PREFIX}*` } },
        }),
      );
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'ManageSchedules',
          actions: ['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule', 'scheduler:GetSchedule'],
          resources: [stack.formatArn({ service: 'scheduler', resource: 'schedule', resourceName: `${this.scheduleGroup.ref}/*` })],
        }),
      );
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'PassSchedulerRole',
          actions: ['iam:PassRole'],
          resources: [this.schedulerRole.roleArn],
          conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
        }),
      );
    };

    // execute: runs guests; also reads the service token it checks.
    guestRunner(execute);
    execute.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadInstallSecrets',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [installSecrets, this.runnerServiceTokenSecret.secretArn, ...(props.vaultTokenSecret ? [props.vaultTokenSecret.secretArn] : [])],
      }),
    );
    if (props.hostAppApiBase) {
      // events calls the host app's bridges too, with the same credential.
      eventsFn.addToRolePolicy(
        new iam.PolicyStatement({ sid: 'ReadBridgeToken', actions: ['secretsmanager:GetSecretValue'], resources: [this.runnerServiceTokenSecret.secretArn] }),
      );
    }

    // ui-assets: reads ui/ and the registry.
    uiAssets.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadUi', actions: ['s3:GetObject'], resources: objects(this.bucket, ['ui/']) }));
    uiAssets.addToRolePolicy(listAlga);
    uiAssets.addToRolePolicy(new iam.PolicyStatement({ sid: 'TableRead', actions: TABLE_READ, resources: tableResources }));
    if (props.hostAppApiKeySecret) {
      uiAssets.addToRolePolicy(
        new iam.PolicyStatement({ sid: 'ReadHostAppApiKey', actions: ['secretsmanager:GetSecretValue'], resources: [props.hostAppApiKeySecret.secretArn] }),
      );
    }

    // publish: the only writer of bundles/, ui/, artifacts/ (delete: undo a failed publish).
    // The upload pairs, and Alga's bundle-store layout at the bucket's root; one result record beside each.
    const uploadAreas = [uploadPrefix, ...ALGA_STORE_PREFIXES];
    publish.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'ReadUploads', actions: ['s3:GetObject'], resources: objects(this.uploadBucket, uploadAreas) }),
    );
    publish.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WriteUploadRecords',
        actions: ['s3:PutObject', 's3:DeleteObject'],
        resources: uploadAreas.map((p) => this.uploadBucket.arnForObjects(`${p}*.result.json`)),
      }),
    );
    if (bundleTrust === 'host-pinned') {
      // host-pinned trusts an unsigned bundle because only the host app can put it here.
      this.uploadBucket.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'OnlyTheHostAppAndPublishWrite',
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: ['s3:PutObject', 's3:DeleteObject'],
          resources: [this.uploadBucket.arnForObjects('*')],
          conditions: { StringNotEquals: { 'aws:PrincipalArn': [props.hostAppWriterArn!, publish.role!.roleArn] } },
        }),
      );
    }
    publish.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WriteBundlesUiArtifacts',
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        resources: objects(this.bucket, PUBLISHED_PREFIXES),
      }),
    );
    publish.addToRolePolicy(listAlga);
    publish.addToRolePolicy(new iam.PolicyStatement({ sid: 'TableReadWrite', actions: [...TABLE_READ, ...TABLE_WRITE], resources: tableResources }));
    publish.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'ReadPublishToken', actions: ['secretsmanager:GetSecretValue'], resources: [this.publishTokenSecret.secretArn] }),
    );
    for (const prefix of uploadAreas) {
      this.uploadBucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.LambdaDestination(publish), { prefix });
    }

    // events: runs guests like execute (installs' secrets, not the service token), consumes
    // its queue (the event source adds that), sends to it (re-queue) and to the delivery DLQ,
    // which no other role may send to.
    guestRunner(eventsFn);
    eventsFn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadInstallSecrets', actions: ['secretsmanager:GetSecretValue'], resources: [installSecrets] }));
    eventsFn.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'QueueSend', actions: ['sqs:SendMessage'], resources: [this.eventsQueue.queueArn] }),
    );
    eventsFn.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'SendDeliveryDeadLetters', actions: ['sqs:SendMessage'], resources: [this.deliveryDeadLetterQueue.queueArn] }),
    );
    eventsFn.addEventSource(new lambdaEvents.SqsEventSource(this.eventsQueue, { batchSize: 10, reportBatchItemFailures: true }));

    // ------------------------------------------------------------ HTTP API
    const accessLogs = new logs.LogGroup(this, 'HttpApiAccessLogs', { retention: logRetention, removalPolicy: RemovalPolicy.DESTROY });
    this.httpApi = new apigwv2.HttpApi(this, 'HttpApi', {
      description: 'alga-lambda runner API',
      createDefaultStage: false,
    });
    new apigwv2.HttpStage(this, 'HttpApiStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        format: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            routeKey: '$context.routeKey',
            status: '$context.status',
            latency: '$context.responseLatency',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    const executeIntegration = new integrations.HttpLambdaIntegration('ExecuteIntegration', execute);
    if (privateExecute) {
      this.privateExecuteApi = this.makePrivateExecuteApi(execute, props.hostAppVpcEndpointId!);
    } else {
      this.httpApi.addRoutes({
        path: '/v1/execute',
        methods: [apigwv2.HttpMethod.POST],
        integration: executeIntegration,
        // token mode: no API Gateway auth; the function checks x-runner-service-token.
        authorizer: props.executeAuth === 'iam' ? new authorizers.HttpIamAuthorizer() : new apigwv2.HttpNoneAuthorizer(),
      });
    }
    this.httpApi.addRoutes({
      path: '/api/ext/{extensionId}/{proxy+}',
      methods: [apigwv2.HttpMethod.ANY],
      integration: executeIntegration,
      authorizer: new authorizers.HttpJwtAuthorizer('jwt', props.jwtIssuer, { jwtAudience: props.jwtAudience }),
    });
    this.httpApi.addRoutes({
      path: '/v1/publish',
      methods: [apigwv2.HttpMethod.POST],
      integration: new integrations.HttpLambdaIntegration('PublishIntegration', publish),
      // The function checks the operator token (ALGA_PUBLISH_TOKEN_SECRET_ID).
      authorizer: new apigwv2.HttpNoneAuthorizer(),
    });

    // ------------------------------------------------------------ alarms
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      masterKey: kms.Alias.fromAliasName(this, 'SnsManagedKey', 'alias/aws/sns'),
    });
    if (props.alarmEmail) this.alarmTopic.addSubscription(new snsSubs.EmailSubscription(props.alarmEmail));
    this.alarms = {};
    const period = Duration.minutes(5);
    const alarm = (name: string, description: string, metric: cloudwatch.IMetric) => {
      const a = new cloudwatch.Alarm(this, name, {
        alarmDescription: description,
        metric,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(new cwActions.SnsAction(this.alarmTopic));
      this.alarms[name] = a;
    };
    const labels: Record<AlgaFunctionKey, [string, string]> = {
      execute: ['Execute', 'execute'],
      uiAssets: ['UiAssets', 'ui-assets'],
      publish: ['Publish', 'publish'],
      events: ['Events', 'events'],
    };
    for (const key of Object.keys(labels) as AlgaFunctionKey[]) {
      const [id, label] = labels[key];
      const fn = this.functions[key];
      alarm(`${id}ErrorsAlarm`, `${label} reported function errors`, fn.metricErrors({ period, statistic: 'Sum' }));
      alarm(`${id}ThrottlesAlarm`, `${label} was throttled`, fn.metricThrottles({ period, statistic: 'Sum' }));
    }
    alarm(
      'EventsDeadLetterAlarm',
      'event messages reached the dead-letter queue',
      this.eventsDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
    );
    alarm(
      'DeliveryDeadLetterAlarm',
      'event deliveries failed for good (reasoned dead letters)',
      this.deliveryDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
    );
  }

  /** CloudFront in front of the ui-assets function URL (AWS_IAM, signed by OAC). */
  /**
   * POST /v1/execute on a PRIVATE REST API: only the host app's VPC endpoint reaches it (the
   * resource policy denies every other source), and the function checks the endpoint again
   * (API Gateway names it in each event's requestContext.identity.vpceId).
   */
  private makePrivateExecuteApi(execute: lambda.Function, vpceId: string): apigw.RestApi {
    const endpoint = ec2.InterfaceVpcEndpoint.fromInterfaceVpcEndpointAttributes(this, 'HostAppVpcEndpoint', {
      vpcEndpointId: vpceId,
      port: 443,
    });
    const api = new apigw.RestApi(this, 'PrivateExecuteApi', {
      description: 'alga-lambda POST /v1/execute for the host app network only',
      endpointConfiguration: { types: [apigw.EndpointType.PRIVATE], vpcEndpoints: [endpoint] },
      cloudWatchRole: false,
      deployOptions: { stageName: 'v1', tracingEnabled: true },
      policy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            effect: iam.Effect.ALLOW,
            principals: [new iam.AnyPrincipal()],
            actions: ['execute-api:Invoke'],
            resources: ['execute-api:/*/POST/v1/execute'],
          }),
          new iam.PolicyStatement({
            effect: iam.Effect.DENY,
            principals: [new iam.AnyPrincipal()],
            actions: ['execute-api:Invoke'],
            resources: ['execute-api:/*'],
            conditions: { StringNotEquals: { 'aws:SourceVpce': vpceId } },
          }),
        ],
      }),
    });
    api.root
      .addResource('v1')
      .addResource('execute')
      .addMethod('POST', new apigw.LambdaIntegration(execute, { proxy: true }), {
        authorizationType: apigw.AuthorizationType.NONE,
      });
    return api;
  }

  private makeDistribution(uiAssets: lambda.Function): cloudfront.Distribution {
    const url = uiAssets.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.AWS_IAM });
    // UI URLs carry the content hash, so the origin answers `immutable, max-age=31536000`; the
    // policy keeps whatever max-age the origin sends. Of the page's query only `tenant` reaches
    // the origin and the key: the origin answers 404 when the bundle is not that tenant's
    // install, so one tenant's cached copy must never answer another. Assets carry no query.
    const cachePolicy = new cloudfront.CachePolicy(this, 'UiCachePolicy', {
      comment: "Honour the origin's Cache-Control; key on the path and tenant",
      minTtl: Duration.seconds(0),
      defaultTtl: Duration.seconds(0),
      maxTtl: Duration.days(365),
      cookieBehavior: cloudfront.CacheCookieBehavior.none(),
      headerBehavior: cloudfront.CacheHeaderBehavior.none(),
      queryStringBehavior: cloudfront.CacheQueryStringBehavior.allowList('tenant'),
      enableAcceptEncodingGzip: true,
      enableAcceptEncodingBrotli: true,
    });
    // No X-Frame-Options and no CSP override: the UI lives in the host app's iframe, and the
    // origin sends the CSP with frame-ancestors (EXT_UI_FRAME_ANCESTORS).
    const headers = new cloudfront.ResponseHeadersPolicy(this, 'UiResponseHeadersPolicy', {
      comment: 'Security headers for extension UIs',
      securityHeadersBehavior: {
        contentTypeOptions: { override: true },
        strictTransportSecurity: { accessControlMaxAge: Duration.seconds(63072000), includeSubdomains: true, override: true },
        referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN, override: true },
      },
      removeHeaders: ['Server'],
    });
    return new cloudfront.Distribution(this, 'UiDistribution', {
      comment: 'alga-lambda extension UIs',
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
      defaultBehavior: {
        origin: origins.FunctionUrlOrigin.withOriginAccessControl(url),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
        cachedMethods: cloudfront.CachedMethods.CACHE_GET_HEAD,
        compress: true,
        cachePolicy,
        responseHeadersPolicy: headers,
      },
    });
  }
}

/**
 * The function's code: given, or cargo-lambda's output folder. A missing folder is named with
 * the command that makes it (CDK's own message only says the asset is missing).
 */
function resolveCode(key: AlgaFunctionKey, code: string | lambda.Code | undefined, lambdaDir: string): lambda.Code {
  if (code instanceof lambda.Code) return code;
  const location = code ?? path.join(lambdaDir, FUNCTION_BINARIES[key]);
  if (!fs.existsSync(location)) {
    throw new Error(
      `AlgaExtensionRunner: no code for ${FUNCTION_BINARIES[key]} at ${location}; ` +
        `build it (scripts/sam-build, or cargo lambda build --release --bin ${FUNCTION_BINARIES[key]}) ` +
        `or pass the ${key}.code prop`,
    );
  }
  return lambda.Code.fromAsset(location);
}
