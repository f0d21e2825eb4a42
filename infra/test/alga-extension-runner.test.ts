// Assertions on the synthesized template of AlgaExtensionRunner: every resource, and the IAM
// boundaries between the four functions. Run with `npm test` (node --test + ts-node).

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AlgaExtensionRunner, AlgaExtensionRunnerProps, AlgaFunctionKey } from '../lib/alga-extension-runner';
import { allowed, allowing, Json, render, roleIds, roleStatements, Stmt } from './support';


/** A cargo-lambda-shaped output folder with a stub bootstrap (the real one is Rust, built elsewhere). */
function stubLambdaDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alga-infra-test-'));
  for (const bin of ['fn-execute', 'fn-ui-assets', 'fn-publish', 'fn-events']) {
    fs.mkdirSync(path.join(dir, bin));
    fs.writeFileSync(path.join(dir, bin, 'bootstrap'), `#!/bin/sh\necho ${bin} stub\n`, { mode: 0o755 });
  }
  return dir;
}

const BASE: AlgaExtensionRunnerProps = {
  jwtIssuer: 'https://issuer.example.com/',
  jwtAudience: ['alga-app'],
};

interface Synth {
  template: Template;
  json: Json;
  runner: AlgaExtensionRunner;
  stack: Stack;
}

function synth(props: Partial<AlgaExtensionRunnerProps> = {}, lambdaDir = stubLambdaDir()): Synth {
  const app = new App();
  const stack = new Stack(app, 'Test');
  const runner = new AlgaExtensionRunner(stack, 'Runner', { ...BASE, lambdaDir, ...props });
  const template = Template.fromStack(stack);
  return { template, json: template.toJSON(), runner, stack };
}

/** Logical id of an L2 construct's CloudFormation resource (or of an L1 resource itself). */
function lid(s: Synth, construct: { node: { defaultChild?: unknown } }): string {
  return s.stack.resolve(((construct.node.defaultChild ?? construct) as { logicalId: string }).logicalId);
}

/** Every statement of a role, or none (CDK's own custom-resource roles may carry only managed policies). */
function roleStatementsOrNone(s: Synth, roleId: string): Stmt[] {
  const role = s.json.Resources[roleId];
  const hasInline = (role.Properties.Policies ?? []).length > 0;
  const hasPolicy = Object.values<Json>(s.json.Resources).some(
    (r) => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: Json) => x.Ref === roleId),
  );
  if (!hasInline && !hasPolicy) return [];
  if ((role.Properties.ManagedPolicyArns ?? []).length > 0) {
    // roleStatements refuses managed policies; read the statements directly.
    const out: Stmt[] = [];
    for (const r of Object.values<Json>(s.json.Resources)) {
      if (r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: Json) => x.Ref === roleId)) {
        for (const st of r.Properties.PolicyDocument.Statement) {
          out.push({ effect: st.Effect, actions: [st.Action].flat(), resources: [st.Resource].flat().map(render), condition: st.Condition });
        }
      }
    }
    return out;
  }
  return roleStatements(s.json.Resources, roleId);
}

/** Every statement attached to the role of one function. */
function statementsOf(s: Synth, key: AlgaFunctionKey): Stmt[] {
  const fnId = lid(s, s.runner.functions[key]);
  return roleStatements(s.json.Resources, s.json.Resources[fnId].Properties.Role['Fn::GetAtt'][0]);
}

describe('AlgaExtensionRunner (defaults)', () => {
  let s: Synth;
  let bucket: string;
  let uploads: string;
  let table: string;
  before(() => {
    s = synth();
    bucket = lid(s, s.runner.bucket);
    uploads = lid(s, s.runner.uploadBucket);
    table = lid(s, s.runner.table);
  });

  test('inventory: exactly these resources (a new one must come with its test)', () => {
    const counts: Record<string, number> = {};
    for (const r of Object.values<Json>(s.json.Resources)) {
      if (r.Type !== 'AWS::CDK::Metadata') counts[r.Type] = (counts[r.Type] ?? 0) + 1;
    }
    assert.deepEqual(counts, {
      'AWS::ApiGatewayV2::Api': 1,
      'AWS::ApiGatewayV2::Authorizer': 1,
      'AWS::ApiGatewayV2::Integration': 2,
      'AWS::ApiGatewayV2::Route': 3,
      'AWS::ApiGatewayV2::Stage': 1,
      'AWS::CloudFront::CachePolicy': 1,
      'AWS::CloudFront::Distribution': 1,
      'AWS::CloudFront::OriginAccessControl': 1,
      'AWS::CloudFront::ResponseHeadersPolicy': 1,
      'AWS::CloudWatch::Alarm': 10,
      'AWS::DynamoDB::Table': 1,
      'AWS::Events::Rule': 1,
      // one role + default policy per function, and CDK's bucket-notifications handler
      'AWS::IAM::Policy': 5,
      // ... plus the role EventBridge Scheduler assumes (inline policy)
      'AWS::IAM::Role': 6,
      'AWS::Lambda::EventSourceMapping': 1,
      'AWS::Lambda::Function': 5,
      // API Gateway x3, S3 -> publish, CloudFront -> function URL x2
      'AWS::Lambda::Permission': 6,
      'AWS::Lambda::Url': 1,
      'AWS::Logs::LogGroup': 5,
      'AWS::S3::Bucket': 2,
      'AWS::S3::BucketPolicy': 2,
      'AWS::SNS::Topic': 1,
      // events queue, its redrive DLQ, the delivery dead letters; a TLS-only policy each
      'AWS::SQS::Queue': 3,
      'AWS::SQS::QueuePolicy': 3,
      'AWS::Scheduler::ScheduleGroup': 1,
      'AWS::SecretsManager::Secret': 2,
      'Custom::S3BucketNotifications': 1,
    });
  });

  test('four provided.al2023 functions: x86_64, bootstrap, X-Ray active, JSON logs, own log group', () => {
    const fns = s.template.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'provided.al2023' } });
    assert.equal(Object.keys(fns).length, 4);
    for (const [id, fn] of Object.entries<Json>(fns)) {
      const p = fn.Properties;
      assert.equal(p.Handler, 'bootstrap', id);
      assert.deepEqual(p.Architectures, ['x86_64'], id);
      assert.deepEqual(p.TracingConfig, { Mode: 'Active' }, id);
      assert.equal(p.LoggingConfig.LogFormat, 'JSON', id);
      assert.ok(p.LoggingConfig.LogGroup.Ref, `${id} logs to its own group`);
      assert.equal(p.Environment.Variables.ALGA_BACKEND, 'aws', id);
      assert.deepEqual(p.Environment.Variables.ALGA_BUCKET, { Ref: bucket }, id);
      assert.deepEqual(p.Environment.Variables.ALGA_TABLE, { Ref: table }, id);
    }
    s.template.resourceCountIs('AWS::Logs::LogGroup', 5); // four functions + API access logs
    s.template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  test('memory, timeout and reserved concurrency defaults', () => {
    const props = (key: AlgaFunctionKey) => s.json.Resources[lid(s, s.runner.functions[key])].Properties;
    assert.deepEqual([props('execute').MemorySize, props('execute').Timeout, props('execute').ReservedConcurrentExecutions], [1024, 30, undefined]);
    assert.deepEqual([props('uiAssets').MemorySize, props('uiAssets').Timeout], [256, 10]);
    assert.deepEqual([props('publish').MemorySize, props('publish').Timeout, props('publish').ReservedConcurrentExecutions], [3008, 300, undefined]);
    assert.deepEqual([props('events').MemorySize, props('events').Timeout], [512, 60]);
  });

  test('environment of each function names the team-wide variables', () => {
    const env = (key: AlgaFunctionKey) => s.json.Resources[lid(s, s.runner.functions[key])].Properties.Environment.Variables;
    const ex = env('execute');
    assert.equal(ex.ALGA_EXECUTE_AUTH, 'token');
    assert.equal(ex.ALGA_INSTALL_SOURCE, 'registry');
    assert.deepEqual(ex.RUNNER_SERVICE_TOKEN_SECRET_ID, { Ref: lid(s, s.runner.runnerServiceTokenSecret) });
    assert.equal(ex.ALGA_SECRETS_PREFIX, 'alga/');
    assert.equal(ex.ALGA_TENANT_CLAIM, 'tenant_id');
    assert.equal(ex.ALGA_USER_CLAIM, 'sub');
    assert.equal(ex.ALGA_QUOTA_PER_MINUTE, '600');
    assert.equal(ex.ALGA_QUOTA_PER_DAY, '100000');
    assert.equal(ex.SIGNING_TRUST_BUNDLE, '{"keys":[],"revoked":[]}');
    assert.equal(ex.EXT_EGRESS_ALLOWLIST, undefined, 'unset (= deny all) unless given');
    assert.match(render(ex.RUNNER_PUBLIC_BASE), /^https:\/\/\$\{.*UiDistribution.*\.DomainName\}$/);
    const pub = env('publish');
    assert.deepEqual(pub.ALGA_UPLOAD_BUCKET, { Ref: uploads });
    assert.equal(pub.ALGA_UPLOAD_PREFIX, 'uploads/');
    assert.deepEqual(pub.ALGA_PUBLISH_TOKEN_SECRET_ID, { Ref: lid(s, s.runner.publishTokenSecret) });
    assert.equal(env('uiAssets').EXT_UI_FRAME_ANCESTORS, undefined);
  });

  test('buckets: public access blocked, SSE, owner-enforced, TLS-only policy, retained', () => {
    s.template.resourceCountIs('AWS::S3::Bucket', 2);
    for (const id of [bucket, uploads]) {
      const b = s.json.Resources[id];
      assert.equal(b.DeletionPolicy, 'Retain');
      assert.deepEqual(b.Properties.PublicAccessBlockConfiguration, {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      assert.equal(b.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm, 'AES256');
      assert.deepEqual(b.Properties.OwnershipControls.Rules, [{ ObjectOwnership: 'BucketOwnerEnforced' }]);
      s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: id },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
    const rules = s.json.Resources[uploads].Properties.LifecycleConfiguration.Rules;
    assert.equal(rules[0].Prefix, 'uploads/');
  });

  test("upload prefix and Alga's store layout notify publish on ObjectCreated", () => {
    s.template.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: { Ref: uploads },
      NotificationConfiguration: {
        LambdaFunctionConfigurations: ['uploads/', 'sha256/', 'tenants/'].map((prefix) => ({
          Events: ['s3:ObjectCreated:*'],
          Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: prefix }] } },
          LambdaFunctionArn: { 'Fn::GetAtt': [lid(s, s.runner.functions.publish), 'Arn'] },
        })),
      },
    });
    s.template.hasResourceProperties('AWS::Lambda::Permission', {
      Principal: 's3.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [lid(s, s.runner.functions.publish), 'Arn'] },
      SourceArn: { 'Fn::GetAtt': [uploads, 'Arn'] },
    });
  });

  test('DynamoDB single table: pk/sk, gsi1, TTL, PITR, on-demand, retained', () => {
    s.template.resourceCountIs('AWS::DynamoDB::Table', 1);
    s.template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: {
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: 'gsi1',
            KeySchema: [
              { AttributeName: 'gsi1pk', KeyType: 'HASH' },
              { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
        TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
      },
    });
    const attrs = s.json.Resources[table].Properties.AttributeDefinitions;
    assert.deepEqual(
      attrs.map((a: Json) => `${a.AttributeName}:${a.AttributeType}`).sort(),
      ['gsi1pk:S', 'gsi1sk:S', 'pk:S', 'sk:S'],
    );
  });

  test('two generated secrets', () => {
    s.template.resourceCountIs('AWS::SecretsManager::Secret', 2);
    s.template.allResourcesProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: { PasswordLength: 48, ExcludePunctuation: true },
    });
  });

  test('EventBridge rule -> SQS queue (SSE, DLQ redrive) -> events with ReportBatchItemFailures', () => {
    const queue = lid(s, s.runner.eventsQueue);
    const dlq = lid(s, s.runner.eventsDeadLetterQueue);
    s.template.resourceCountIs('AWS::SQS::Queue', 3);
    s.template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 360,
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] }, maxReceiveCount: 5 },
    });
    s.template.hasResourceProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 1209600, SqsManagedSseEnabled: true });
    s.template.hasResourceProperties('AWS::Events::Rule', {
      // the host's sources, and the prefix of every event an extension emits
      EventPattern: { source: ['alga.psa', { prefix: 'alga.extension/' }] },
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [queue, 'Arn'] } })],
    });
    assert.equal(Object.values<Json>(s.template.findResources('AWS::Events::Rule'))[0].Properties.EventBusName, undefined, 'default bus');
    s.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queue }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Action: Match.arrayWith(['sqs:SendMessage']),
            Principal: { Service: 'events.amazonaws.com' },
            Condition: { ArnEquals: { 'aws:SourceArn': Match.anyValue() } },
          }),
        ]),
      },
    });
    s.template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [queue, 'Arn'] },
      FunctionName: { Ref: lid(s, s.runner.functions.events) },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 10,
    });
  });

  test('HTTP API: three routes, execute by service token, /api/ext by JWT, publish by operator token', () => {
    s.template.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
    });
    s.template.resourceCountIs('AWS::ApiGatewayV2::Route', 3);
    const routes = Object.values<Json>(s.template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties);
    const byKey = Object.fromEntries(routes.map((r) => [r.RouteKey, r]));
    assert.deepEqual(Object.keys(byKey).sort(), ['ANY /api/ext/{extensionId}/{proxy+}', 'POST /v1/execute', 'POST /v1/publish']);
    assert.equal(byKey['POST /v1/execute'].AuthorizationType, 'NONE');
    assert.equal(byKey['POST /v1/publish'].AuthorizationType, 'NONE');
    assert.equal(byKey['ANY /api/ext/{extensionId}/{proxy+}'].AuthorizationType, 'JWT');
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: { Issuer: 'https://issuer.example.com/', Audience: ['alga-app'] },
    });
    // Both execute routes reach execute; publish's reaches publish; every integration is a proxy.
    const integrations = s.template.findResources('AWS::ApiGatewayV2::Integration');
    const target = (routeKey: string) => {
      const id = byKey[routeKey].Target['Fn::Join'][1][1].Ref;
      const p = integrations[id].Properties;
      assert.equal(p.IntegrationType, 'AWS_PROXY');
      assert.equal(p.PayloadFormatVersion, '2.0');
      return p.IntegrationUri['Fn::GetAtt'][0];
    };
    assert.equal(target('POST /v1/execute'), lid(s, s.runner.functions.execute));
    assert.equal(target('ANY /api/ext/{extensionId}/{proxy+}'), lid(s, s.runner.functions.execute));
    assert.equal(target('POST /v1/publish'), lid(s, s.runner.functions.publish));
    const apiPermissions = s.template.findResources('AWS::Lambda::Permission', { Properties: { Principal: 'apigateway.amazonaws.com' } });
    assert.equal(Object.keys(apiPermissions).length, 3);
  });

  test('ui-assets: IAM-auth function URL behind CloudFront with a lambda OAC', () => {
    const ui = lid(s, s.runner.functions.uiAssets);
    s.template.resourceCountIs('AWS::Lambda::Url', 1);
    s.template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'AWS_IAM', TargetFunctionArn: { 'Fn::GetAtt': [ui, 'Arn'] } });
    s.template.hasResourceProperties('AWS::CloudFront::OriginAccessControl', {
      OriginAccessControlConfig: { OriginAccessControlOriginType: 'lambda', SigningBehavior: 'always', SigningProtocol: 'sigv4' },
    });
    const dist = Object.values<Json>(s.template.findResources('AWS::CloudFront::Distribution'));
    assert.equal(dist.length, 1);
    const cfg = dist[0].Properties.DistributionConfig;
    assert.equal(cfg.Origins.length, 1);
    assert.ok(cfg.Origins[0].OriginAccessControlId, 'origin signs with OAC');
    assert.equal(cfg.Origins[0].CustomOriginConfig.OriginProtocolPolicy, 'https-only');
    assert.match(JSON.stringify(cfg.Origins[0].DomainName), /FunctionUrl/);
    const b = cfg.DefaultCacheBehavior;
    assert.equal(b.ViewerProtocolPolicy, 'redirect-to-https');
    assert.deepEqual(b.AllowedMethods, ['GET', 'HEAD']);
    assert.ok(b.CachePolicyId.Ref && b.ResponseHeadersPolicyId.Ref);
    // Function URLs need both permissions for CloudFront, scoped to this distribution.
    const cf = Object.values<Json>(
      s.template.findResources('AWS::Lambda::Permission', { Properties: { Principal: 'cloudfront.amazonaws.com' } }),
    ).map((r) => r.Properties);
    assert.deepEqual(cf.map((p) => p.Action).sort(), ['lambda:InvokeFunction', 'lambda:InvokeFunctionUrl']);
    assert.equal(cf.find((p) => p.Action === 'lambda:InvokeFunction').InvokedViaFunctionUrl, true);
    for (const p of cf) assert.match(render(p.SourceArn), /:distribution\/\$\{.*UiDistribution/);
  });

  test('cache policy honours the origin Cache-Control and keys on the path and tenant=; security headers set', () => {
    s.template.hasResourceProperties('AWS::CloudFront::CachePolicy', {
      CachePolicyConfig: {
        MinTTL: 0,
        DefaultTTL: 0,
        MaxTTL: 31536000,
        ParametersInCacheKeyAndForwardedToOrigin: {
          CookiesConfig: { CookieBehavior: 'none' },
          HeadersConfig: { HeaderBehavior: 'none' },
          QueryStringsConfig: { QueryStringBehavior: 'whitelist', QueryStrings: ['tenant'] },
          EnableAcceptEncodingGzip: true,
          EnableAcceptEncodingBrotli: true,
        },
      },
    });
    const policy = Object.values<Json>(s.template.findResources('AWS::CloudFront::ResponseHeadersPolicy'))[0].Properties
      .ResponseHeadersPolicyConfig;
    const sec = policy.SecurityHeadersConfig;
    assert.deepEqual(sec.ContentTypeOptions, { Override: true });
    assert.equal(sec.StrictTransportSecurity.AccessControlMaxAgeSec, 63072000);
    assert.equal(sec.ReferrerPolicy.ReferrerPolicy, 'strict-origin-when-cross-origin');
    assert.equal(sec.FrameOptions, undefined, 'the UI must stay frameable by the host app');
    assert.equal(sec.ContentSecurityPolicy, undefined, 'the origin sends the CSP with frame-ancestors');
  });

  test('alarms: errors and throttles per function, DLQ depth > 0, all to the SNS topic', () => {
    s.template.resourceCountIs('AWS::CloudWatch::Alarm', 10);
    const alarms = Object.values<Json>(s.template.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);
    const topic = lid(s, s.runner.alarmTopic);
    for (const a of alarms) {
      assert.deepEqual(a.AlarmActions, [{ Ref: topic }]);
      assert.equal(a.Threshold, 0);
      assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
    }
    for (const key of ['execute', 'uiAssets', 'publish', 'events'] as AlgaFunctionKey[]) {
      const fn = lid(s, s.runner.functions[key]);
      for (const metric of ['Errors', 'Throttles']) {
        assert.ok(
          alarms.some((a) => a.MetricName === metric && a.Namespace === 'AWS/Lambda' && a.Dimensions[0].Value.Ref === fn),
          `${metric} alarm for ${key}`,
        );
      }
    }
    const sqsAlarms = alarms.filter((a) => a.Namespace === 'AWS/SQS');
    assert.equal(sqsAlarms.length, 2);
    for (const a of sqsAlarms) assert.equal(a.MetricName, 'ApproximateNumberOfMessagesVisible');
    assert.deepEqual(
      sqsAlarms.map((a) => a.Dimensions[0].Value['Fn::GetAtt'][0]).sort(),
      [lid(s, s.runner.eventsDeadLetterQueue), lid(s, s.runner.deliveryDeadLetterQueue)].sort(),
    );
    s.template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  test('IAM: execute reads bundles/ ui/ artifacts/ and writes nothing in S3', () => {
    const st = statementsOf(s, 'execute');
    assert.deepEqual(allowed(st, 's3:GetObject'), [`\${${bucket}.Arn}/artifacts/*`, `\${${bucket}.Arn}/bundles/*`, `\${${bucket}.Arn}/ui/*`]);
    for (const action of ['s3:PutObject', 's3:DeleteObject', 's3:*', '*']) assert.deepEqual(allowed(st, action), [], action);
    assert.ok(st.every((x) => x.actions.every((a) => !a.startsWith('s3:Put') && !a.startsWith('s3:Delete'))));
    assert.deepEqual(allowed(st, 's3:ListBucket'), [`\${${bucket}.Arn}`]);
    assert.ok(!st.some((x) => x.resources.some((r) => r.includes(uploads))), 'no access to the upload bucket');
  });

  test('IAM: execute reads/writes the table and reads secrets under alga/ plus the service token', () => {
    const st = statementsOf(s, 'execute');
    for (const a of ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem']) {
      assert.deepEqual(allowed(st, a), [`\${${table}.Arn}`, `\${${table}.Arn}/index/*`], a);
    }
    assert.deepEqual(allowed(st, 'dynamodb:DeleteTable'), []);
    assert.deepEqual(allowed(st, 'secretsmanager:GetSecretValue'), [
      `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:alga/*`,
      `\${${lid(s, s.runner.runnerServiceTokenSecret)}}`,
    ].sort());
    assert.deepEqual(allowed(st, 'secretsmanager:PutSecretValue'), []);
  });

  test('IAM: only publish writes bundles/ ui/ artifacts/', () => {
    const pub = statementsOf(s, 'publish');
    const published = [`\${${bucket}.Arn}/artifacts/*`, `\${${bucket}.Arn}/bundles/*`, `\${${bucket}.Arn}/ui/*`];
    // In the upload bucket: read the upload areas, write only the result records.
    const areas = ['uploads/', 'sha256/', 'tenants/'];
    const records = areas.map((p) => `\${${uploads}.Arn}/${p}*.result.json`);
    assert.deepEqual(allowed(pub, 's3:PutObject'), [...published, ...records].sort());
    assert.deepEqual(allowed(pub, 's3:DeleteObject'), [...published, ...records].sort());
    assert.deepEqual(allowed(pub, 's3:GetObject'), [...published, ...areas.map((p) => `\${${uploads}.Arn}/${p}*`)].sort());
    assert.deepEqual(allowed(pub, 'secretsmanager:GetSecretValue'), [`\${${lid(s, s.runner.publishTokenSecret)}}`]);
    assert.deepEqual(allowed(pub, 'dynamodb:PutItem'), [`\${${table}.Arn}`, `\${${table}.Arn}/index/*`]);
    for (const key of ['execute', 'uiAssets', 'events'] as AlgaFunctionKey[]) {
      const st = statementsOf(s, key);
      for (const a of ['s3:PutObject', 's3:DeleteObject']) assert.deepEqual(allowed(st, a), [], `${key} ${a}`);
    }
  });

  test('IAM: ui-assets reads ui/ and the table, nothing else', () => {
    const st = statementsOf(s, 'uiAssets');
    assert.deepEqual(allowed(st, 's3:GetObject'), [`\${${bucket}.Arn}/ui/*`]);
    assert.deepEqual(allowed(st, 'dynamodb:GetItem'), [`\${${table}.Arn}`, `\${${table}.Arn}/index/*`]);
    for (const a of ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'secretsmanager:GetSecretValue']) {
      assert.deepEqual(allowed(st, a), [], a);
    }
  });

  test('IAM: events reads/writes the table, consumes its queue, sends to it and to the delivery DLQ', () => {
    const st = statementsOf(s, 'events');
    const queue = `\${${lid(s, s.runner.eventsQueue)}.Arn}`;
    const dlq = `\${${lid(s, s.runner.deliveryDeadLetterQueue)}.Arn}`;
    assert.deepEqual(allowed(st, 'dynamodb:UpdateItem'), [`\${${table}.Arn}`, `\${${table}.Arn}/index/*`]);
    for (const a of ['sqs:ReceiveMessage', 'sqs:DeleteMessage']) assert.deepEqual(allowed(st, a), [queue], a);
    assert.deepEqual(allowed(st, 'sqs:SendMessage'), [dlq, queue].sort());
  });

  test("IAM: events runs guests with execute's reads: S3 (no write), install secrets (no service token)", () => {
    const ev = statementsOf(s, 'events');
    const ex = statementsOf(s, 'execute');
    assert.deepEqual(allowed(ev, 's3:GetObject'), allowed(ex, 's3:GetObject'));
    assert.ok(allowed(ev, 's3:GetObject').includes(`\${${bucket}.Arn}/artifacts/*`));
    assert.deepEqual(allowed(ev, 's3:ListBucket'), [`\${${bucket}.Arn}`]);
    for (const action of ['s3:PutObject', 's3:DeleteObject', 's3:*', '*']) assert.deepEqual(allowed(ev, action), [], action);
    assert.deepEqual(allowed(ev, 'secretsmanager:GetSecretValue'), [
      `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:alga/*`,
    ]);
    assert.ok(!ev.some((x) => x.resources.some((r) => r.includes(uploads))), 'no access to the upload bucket');
  });

  test('delivery dead letters: own queue (SSE, 14 days, TLS only, alarm), only events may send, URL in its env', () => {
    const dlqId = lid(s, s.runner.deliveryDeadLetterQueue);
    const q = s.json.Resources[dlqId].Properties;
    assert.equal(q.SqsManagedSseEnabled, true);
    assert.equal(q.MessageRetentionPeriod, 1209600);
    assert.equal(q.RedrivePolicy, undefined);
    s.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: dlqId }],
      PolicyDocument: {
        Statement: [Match.objectLike({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })],
      },
    });
    const dlqArn = `\${${dlqId}.Arn}`;
    const ev = statementsOf(s, 'events');
    assert.deepEqual(
      ev.filter((x) => x.resources.includes(dlqArn)).flatMap((x) => x.actions),
      ['sqs:SendMessage'],
    );
    for (const role of roleIds(s.json.Resources)) {
      if (role === s.json.Resources[lid(s, s.runner.functions.events)].Properties.Role['Fn::GetAtt'][0]) continue;
      const st = roleStatementsOrNone(s, role);
      assert.ok(!st.some((x) => x.resources.includes(dlqArn)), `${role} has no access to the delivery DLQ`);
    }
    const env = (key: AlgaFunctionKey) => s.json.Resources[lid(s, s.runner.functions[key])].Properties.Environment.Variables;
    assert.deepEqual(env('events').ALGA_EVENTS_DLQ_URL, { Ref: dlqId });
    for (const key of ['execute', 'uiAssets', 'publish'] as AlgaFunctionKey[]) assert.equal(env(key).ALGA_EVENTS_DLQ_URL, undefined, key);
  });

  test('guests emit: execute and events may PutEvents on the bus, only with an alga.extension/ source', () => {
    const bus = 'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default';
    for (const key of ['execute', 'events'] as AlgaFunctionKey[]) {
      const put = allowing(statementsOf(s, key), 'events:PutEvents');
      assert.equal(put.length, 1, key);
      assert.deepEqual(put[0].resources, [bus], key);
      assert.deepEqual(put[0].condition, { StringLike: { 'events:source': 'alga.extension/*' } }, key);
      assert.equal(s.json.Resources[lid(s, s.runner.functions[key])].Properties.Environment.Variables.ALGA_EVENT_BUS, 'default', key);
    }
    for (const key of ['uiAssets', 'publish'] as AlgaFunctionKey[]) assert.deepEqual(allowed(statementsOf(s, key), 'events:PutEvents'), [], key);
  });

  test('schedules: a group, a role only EventBridge Scheduler assumes, invoking only the events function', () => {
    const group = lid(s, s.runner.scheduleGroup);
    s.template.resourceCountIs('AWS::Scheduler::ScheduleGroup', 1);
    assert.deepEqual(s.json.Resources[group].Properties.Name, 'Test', 'the stack name by default');
    const roleId = lid(s, s.runner.schedulerRole);
    const trust = s.json.Resources[roleId].Properties.AssumeRolePolicyDocument.Statement;
    assert.equal(trust.length, 1);
    assert.deepEqual(trust[0].Principal, { Service: 'scheduler.amazonaws.com' });
    assert.deepEqual(trust[0].Condition, { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } });
    const eventsArn = 'arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:alga-events-';
    const st = roleStatements(s.json.Resources, roleId);
    assert.equal(st.length, 1);
    assert.deepEqual(st[0].actions, ['lambda:InvokeFunction']);
    assert.equal(st[0].resources.length, 1);
    assert.ok(st[0].resources[0].startsWith(eventsArn), st[0].resources[0]);
    // That ARN is the events function's: its fixed name, from the stack id.
    const events = s.json.Resources[lid(s, s.runner.functions.events)].Properties;
    assert.ok(st[0].resources[0].endsWith(`:function:${render(events.FunctionName)}`), render(events.FunctionName));
    assert.match(render(events.FunctionName), /^alga-events-.*AWS::StackId/);
    for (const key of ['execute', 'events'] as AlgaFunctionKey[]) {
      const env = s.json.Resources[lid(s, s.runner.functions[key])].Properties.Environment.Variables;
      assert.equal(render(env.ALGA_SCHEDULER_TARGET_ARN), st[0].resources[0], key);
      assert.deepEqual(env.ALGA_SCHEDULER_ROLE_ARN, { 'Fn::GetAtt': [roleId, 'Arn'] }, key);
      assert.deepEqual(env.ALGA_SCHEDULER_GROUP, { Ref: group }, key);
    }
    for (const key of ['uiAssets', 'publish'] as AlgaFunctionKey[]) {
      assert.equal(s.json.Resources[lid(s, s.runner.functions[key])].Properties.Environment.Variables.ALGA_SCHEDULER_ROLE_ARN, undefined, key);
    }
    // No resource-based permission: Scheduler invokes with the role.
    s.template.resourcePropertiesCountIs('AWS::Lambda::Permission', { Principal: 'scheduler.amazonaws.com' }, 0);
  });

  test('IAM: execute and events manage schedules in the group and pass only the scheduler role', () => {
    const group = lid(s, s.runner.scheduleGroup);
    const inGroup = `arn:\${AWS::Partition}:scheduler:\${AWS::Region}:\${AWS::AccountId}:schedule/\${${group}}/*`;
    const schedulerRole = `\${${lid(s, s.runner.schedulerRole)}.Arn}`;
    for (const key of ['execute', 'events'] as AlgaFunctionKey[]) {
      const st = statementsOf(s, key);
      for (const a of ['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule', 'scheduler:GetSchedule']) {
        assert.deepEqual(allowed(st, a), [inGroup], `${key} ${a}`);
      }
      assert.ok(!st.some((x) => x.actions.some((a) => a.startsWith('scheduler:') && !a.endsWith('Schedule'))), `${key}: no group-level actions`);
      const pass = allowing(st, 'iam:PassRole');
      assert.equal(pass.length, 1, key);
      assert.deepEqual(pass[0].resources, [schedulerRole], key);
      assert.deepEqual(pass[0].condition, { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } }, key);
    }
    const allowedRoles = new Set(
      (['execute', 'events'] as AlgaFunctionKey[]).map((k) => s.json.Resources[lid(s, s.runner.functions[k])].Properties.Role['Fn::GetAtt'][0]),
    );
    for (const role of roleIds(s.json.Resources).filter((r) => !allowedRoles.has(r))) {
      const st = roleStatementsOrNone(s, role);
      assert.deepEqual(allowed(st, 'iam:PassRole'), [], role);
      assert.ok(!st.some((x) => x.actions.some((a) => a.startsWith('scheduler:'))), role);
    }
  });

  test("events gets execute's guest settings (not its HTTP auth)", () => {
    const env = (key: AlgaFunctionKey) => s.json.Resources[lid(s, s.runner.functions[key])].Properties.Environment.Variables;
    const ex = env('execute');
    const ev = env('events');
    for (const k of ['ALGA_SECRETS_PREFIX', 'ALGA_QUOTA_PER_MINUTE', 'ALGA_QUOTA_PER_DAY', 'SIGNING_TRUST_BUNDLE', 'ALGA_ARTIFACT_CACHE_DIR', 'ALGA_BACKEND', 'ALGA_BUCKET', 'ALGA_TABLE']) {
      assert.notEqual(ev[k], undefined, k);
      assert.deepEqual(ev[k], ex[k], k);
    }
    for (const k of ['ALGA_EXECUTE_AUTH', 'ALGA_INSTALL_SOURCE', 'RUNNER_SERVICE_TOKEN_SECRET_ID', 'ALGA_TENANT_CLAIM']) assert.equal(ev[k], undefined, k);
  });

  test('IAM: every role writes only its own log group; "*" only for X-Ray', () => {
    for (const key of ['execute', 'uiAssets', 'publish', 'events'] as AlgaFunctionKey[]) {
      const st = statementsOf(s, key);
      const fn = s.json.Resources[lid(s, s.runner.functions[key])];
      assert.deepEqual(allowed(st, 'logs:PutLogEvents'), [`\${${fn.Properties.LoggingConfig.LogGroup.Ref}.Arn}`], key);
      for (const x of st) {
        if (x.resources.includes('*')) assert.ok(x.actions.every((a) => a.startsWith('xray:')), `${key}: ${x.actions}`);
        assert.ok(x.actions.every((a) => !a.endsWith(':*') && a !== '*'), `${key}: no wildcard actions: ${x.actions}`);
      }
    }
  });
});

describe('AlgaExtensionRunner (props)', () => {
  test('architecture, sizes, timeouts, reserved concurrency, auth mode and options reach the template', () => {
    const s = synth({
      architecture: lambda.Architecture.ARM_64,
      execute: { memorySize: 2048, timeout: Duration.seconds(20), reservedConcurrency: 50 },
      uiAssets: { reservedConcurrency: 10 },
      publish: { memorySize: 4096, timeout: Duration.seconds(600) },
      events: { timeout: Duration.seconds(30) },
      executeAuth: 'iam',
      installSource: 'caller',
      hostAppApiBase: 'https://alga.example.com',
      jwtAudience: ['a', 'b'],
      secretsPrefix: 'tenants/',
      uploadPrefix: 'incoming/',
      egressAllowlist: 'api.example.com',
      uiFrameAncestors: 'https://psa.example.com',
      eventSources: ['alga.psa', 'alga.billing'],
      eventBusName: 'alga-bus',
      scheduleGroupName: 'alga-schedules',
      eventsMaxReceiveCount: 3,
      alarmEmail: 'ops@example.com',
    });
    const props = (key: AlgaFunctionKey) => s.json.Resources[lid(s, s.runner.functions[key])].Properties;
    for (const key of ['execute', 'uiAssets', 'publish', 'events'] as AlgaFunctionKey[]) {
      assert.deepEqual(props(key).Architectures, ['arm64'], key);
    }
    assert.deepEqual([props('execute').MemorySize, props('execute').Timeout, props('execute').ReservedConcurrentExecutions], [2048, 20, 50]);
    assert.equal(props('uiAssets').ReservedConcurrentExecutions, 10);
    assert.deepEqual([props('publish').MemorySize, props('publish').Timeout], [4096, 600]);
    assert.equal(props('events').Timeout, 30);
    assert.equal(props('execute').Environment.Variables.ALGA_EXECUTE_AUTH, 'iam');
    assert.equal(props('execute').Environment.Variables.ALGA_INSTALL_SOURCE, 'caller');
    assert.equal(props('execute').Environment.Variables.EXT_EGRESS_ALLOWLIST, 'api.example.com');
    assert.equal(props('uiAssets').Environment.Variables.EXT_UI_FRAME_ANCESTORS, 'https://psa.example.com');
    assert.equal(props('publish').Environment.Variables.ALGA_UPLOAD_PREFIX, 'incoming/');
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /v1/execute', AuthorizationType: 'AWS_IAM' });
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', { JwtConfiguration: { Audience: ['a', 'b'] } });
    s.template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: 'alga-bus',
      EventPattern: { source: ['alga.psa', 'alga.billing', { prefix: 'alga.extension/' }] },
    });
    s.template.hasResourceProperties('AWS::Scheduler::ScheduleGroup', { Name: 'alga-schedules' });
    for (const key of ['execute', 'events'] as AlgaFunctionKey[]) {
      const env = props(key).Environment.Variables;
      assert.equal(env.ALGA_EVENT_BUS, 'alga-bus', key);
      assert.deepEqual(allowed(statementsOf(s, key), 'events:PutEvents'), [
        'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/alga-bus',
      ]);
      assert.equal(env.EXT_EGRESS_ALLOWLIST, 'api.example.com', key);
    }
    s.template.hasResourceProperties('AWS::SQS::Queue', { RedrivePolicy: Match.objectLike({ maxReceiveCount: 3 }) });
    s.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    s.template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        LambdaFunctionConfigurations: Match.arrayWith([Match.objectLike({ Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'incoming/' }] } } })]),
      },
    });
    const st = statementsOf(s, 'execute');
    assert.ok(allowed(st, 'secretsmanager:GetSecretValue').some((r) => r.endsWith(':secret:tenants/*')));
  });

  test('a schedule group name EventBridge Scheduler would refuse is named at synth time', () => {
    assert.throws(() => synth({ scheduleGroupName: 'no spaces' }), /schedule group name 'no spaces'/);
    const app = new App();
    const stack = new Stack(app, 'S'.repeat(65));
    assert.throws(
      () => new AlgaExtensionRunner(stack, 'Runner', { ...BASE, lambdaDir: stubLambdaDir() }),
      /defaults to the stack name; set scheduleGroupName/,
    );
    const ok = new AlgaExtensionRunner(new Stack(new App(), 'S'.repeat(65)), 'Runner', {
      ...BASE,
      lambdaDir: stubLambdaDir(),
      scheduleGroupName: 'alga',
    });
    assert.ok(ok.scheduleGroup);
  });

  test('each function takes its own code location (folder or lambda.Code)', () => {
    const dir = stubLambdaDir();
    const custom = fs.mkdtempSync(path.join(os.tmpdir(), 'alga-infra-custom-'));
    for (const bin of ['fn-execute', 'fn-ui-assets']) {
      fs.mkdirSync(path.join(custom, bin));
      fs.writeFileSync(path.join(custom, bin, 'bootstrap'), `#!/bin/sh\necho custom ${bin}\n`, { mode: 0o755 });
    }
    const base = synth({}, dir);
    const s = synth(
      {
        execute: { code: path.join(custom, 'fn-execute') },
        uiAssets: { code: lambda.Code.fromAsset(path.join(custom, 'fn-ui-assets')) },
      },
      dir,
    );
    const key = (x: Synth, k: AlgaFunctionKey) => x.json.Resources[lid(x, x.runner.functions[k])].Properties.Code.S3Key;
    assert.notEqual(key(s, 'execute'), key(base, 'execute'));
    assert.notEqual(key(s, 'uiAssets'), key(base, 'uiAssets'));
    assert.equal(key(s, 'publish'), key(base, 'publish'));
    assert.equal(key(s, 'events'), key(base, 'events'));
  });

  test('the default code location is cargo-lambda output, and a missing build is named', () => {
    const missing = path.join(os.tmpdir(), 'alga-no-such-lambda-dir');
    assert.throws(
      () => synth({ execute: { code: stubLambdaDir() + '/fn-execute' } }, missing),
      (e: Error) => e.message.includes(path.join(missing, 'fn-ui-assets')) && e.message.includes('cargo lambda build'),
    );
  });

  test('private execute: a PRIVATE REST API only the host app endpoint reaches; no public execute route', () => {
    const vpce = 'vpce-0a1b2c3d4e5f60718';
    const p = synth({ executeAuth: 'private', hostAppVpcEndpointId: vpce });
    // The HTTP API keeps the direct route and publish only.
    const routes = Object.values<Json>(p.template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties.RouteKey);
    assert.deepEqual(routes.sort(), ['ANY /api/ext/{extensionId}/{proxy+}', 'POST /v1/publish']);
    p.template.resourceCountIs('AWS::ApiGateway::RestApi', 1);
    const api = Object.values<Json>(p.template.findResources('AWS::ApiGateway::RestApi'))[0].Properties;
    assert.deepEqual(api.EndpointConfiguration, { Types: ['PRIVATE'], VpcEndpointIds: [vpce] });
    const deny = api.Policy.Statement.find((s: Json) => s.Effect === 'Deny');
    assert.deepEqual(deny.Condition, { StringNotEquals: { 'aws:SourceVpce': vpce } });
    assert.equal(deny.Resource, 'execute-api:/*');
    const allow = api.Policy.Statement.find((s: Json) => s.Effect === 'Allow');
    assert.equal(allow.Resource, 'execute-api:/*/POST/v1/execute');
    // One method, POST /v1/execute, no API Gateway auth, proxied to execute.
    p.template.resourceCountIs('AWS::ApiGateway::Method', 1);
    p.template.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'POST',
      AuthorizationType: 'NONE',
      Integration: Match.objectLike({ Type: 'AWS_PROXY' }),
    });
    p.template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'execute' });
    p.template.hasResourceProperties('AWS::ApiGateway::Stage', { StageName: 'v1', TracingEnabled: true });
    // The function checks the endpoint again.
    const env = p.json.Resources[lid(p, p.runner.functions.execute)].Properties.Environment.Variables;
    assert.equal(env.ALGA_EXECUTE_AUTH, 'private');
    assert.equal(env.ALGA_EXECUTE_VPC_ENDPOINT_IDS, vpce);
    // Default (token) mode names no endpoint and makes no REST API.
    const d = synth();
    assert.equal(d.json.Resources[lid(d, d.runner.functions.execute)].Properties.Environment.Variables.ALGA_EXECUTE_VPC_ENDPOINT_IDS, undefined);
    d.template.resourceCountIs('AWS::ApiGateway::RestApi', 0);
  });

  test('host-pinned bundles: ALGA_BUNDLE_TRUST everywhere guests run or publish, and only the host app and publish write uploads', () => {
    const writer = 'arn:aws:iam::123456789012:role/alga-server';
    const p = synth({ bundleTrust: 'host-pinned', hostAppWriterArn: writer });
    for (const key of ['execute', 'publish', 'events'] as AlgaFunctionKey[]) {
      const env = p.json.Resources[lid(p, p.runner.functions[key])].Properties.Environment.Variables;
      assert.equal(env.ALGA_BUNDLE_TRUST, 'host-pinned', key);
    }
    const policies = Object.values<Json>(p.template.findResources('AWS::S3::BucketPolicy'));
    const uploadPolicy = policies.find((b) => b.Properties.Bucket.Ref === lid(p, p.runner.uploadBucket));
    const deny = uploadPolicy.Properties.PolicyDocument.Statement.find((st: Json) => st.Sid === 'OnlyTheHostAppAndPublishWrite');
    assert.equal(deny.Effect, 'Deny');
    assert.deepEqual(deny.Action, ['s3:PutObject', 's3:DeleteObject']);
    const principals = deny.Condition.StringNotEquals['aws:PrincipalArn'];
    assert.equal(principals[0], writer);
    assert.equal(principals.length, 2);
    // The default trusts signatures only and leaves the bucket policy alone.
    const d = synth();
    assert.equal(d.json.Resources[lid(d, d.runner.functions.publish)].Properties.Environment.Variables.ALGA_BUNDLE_TRUST, 'signature');
    const dPolicies = Object.values<Json>(d.template.findResources('AWS::S3::BucketPolicy'));
    assert.ok(!JSON.stringify(dPolicies).includes('OnlyTheHostAppAndPublishWrite'));
    assert.throws(() => synth({ bundleTrust: 'host-pinned' }), /hostAppWriterArn/);
  });

  test("Alga's host side: host API, ext-ui asking the host app, host-kept stores without a scheduler mirror, Vault", () => {
    const stack = new Stack(new App(), 'Secrets');
    const apiKey = secretsmanager.Secret.fromSecretCompleteArn(stack, 'K', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:alga-auth-key-AbCdEf');
    const vaultToken = secretsmanager.Secret.fromSecretCompleteArn(stack, 'V', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:vault-token-AbCdEf');
    const p = synth({
      installSource: 'caller',
      hostAppApiBase: 'https://alga.example.com',
      hostAppUiProxyBase: 'https://alga.example.com/proxy',
      hostAppApiKeySecret: apiKey,
      hostStores: ['schedules', 'kv', 'kv'],
      vaultAddr: 'https://vault.internal:8200',
      vaultTokenSecret: vaultToken,
    });
    const env = (key: AlgaFunctionKey) => p.json.Resources[lid(p, p.runner.functions[key])].Properties.Environment.Variables;
    const token = { Ref: lid(p, p.runner.runnerServiceTokenSecret) };
    for (const key of ['execute', 'events'] as AlgaFunctionKey[]) {
      const e = env(key);
      assert.equal(e.ALGA_HOST_API_BASE, 'https://alga.example.com', key);
      assert.equal(e.ALGA_UI_PROXY_BASE, 'https://alga.example.com/proxy', key);
      assert.deepEqual(e.ALGA_HOST_API_BRIDGE_TOKEN_SECRET_ID, token, key);
      assert.equal(e.ALGA_HOST_STORES, 'kv,schedules', key);
      // The host app fires the schedules it keeps: nothing mirrored to EventBridge Scheduler.
      assert.equal(e.ALGA_SCHEDULER_TARGET_ARN, undefined, key);
    }
    assert.equal(env('execute').ALGA_VAULT_ADDR, 'https://vault.internal:8200');
    assert.equal(env('execute').ALGA_VAULT_TOKEN_SECRET_ID, vaultToken.secretArn);
    assert.equal(env('events').ALGA_VAULT_ADDR, undefined);
    const ui = env('uiAssets');
    assert.equal(ui.ALGA_INSTALL_SOURCE, 'caller');
    assert.equal(ui.ALGA_HOST_API_BASE, 'https://alga.example.com');
    assert.equal(ui.ALGA_HOST_API_KEY_SECRET_ID, apiKey.secretArn);
    assert.deepEqual(allowed(statementsOf(p, 'uiAssets'), 'secretsmanager:GetSecretValue'), [apiKey.secretArn]);
    assert.ok(allowed(statementsOf(p, 'execute'), 'secretsmanager:GetSecretValue').includes(vaultToken.secretArn));
    assert.ok(allowed(statementsOf(p, 'events'), 'secretsmanager:GetSecretValue').some((r) => r.includes('RunnerServiceTokenSecret')));
    // Without the host app's base, caller installs and host stores are refused at synth time.
    assert.throws(() => synth({ installSource: 'caller' }), /hostAppApiBase/);
    assert.throws(() => synth({ hostStores: ['kv'] }), /hostAppApiBase/);
    // The defaults: registry installs, no host API, the mirror on.
    const d = synth();
    assert.equal(d.json.Resources[lid(d, d.runner.functions.uiAssets)].Properties.Environment.Variables.ALGA_INSTALL_SOURCE, 'registry');
    assert.equal(d.json.Resources[lid(d, d.runner.functions.execute)].Properties.Environment.Variables.ALGA_HOST_API_BASE, undefined);
    assert.ok(d.json.Resources[lid(d, d.runner.functions.execute)].Properties.Environment.Variables.ALGA_SCHEDULER_TARGET_ARN);
  });

  test('private execute without the host app endpoint is refused at synth time', () => {
    assert.throws(() => synth({ executeAuth: 'private' }), /hostAppVpcEndpointId/);
    assert.throws(() => synth({ executeAuth: 'private', hostAppVpcEndpointId: 'vpc-123' }), /hostAppVpcEndpointId/);
  });

  test('bad JWT settings are refused', () => {
    assert.throws(() => synth({ jwtIssuer: 'http://insecure.example.com' }), /https URL/);
    assert.throws(() => synth({ jwtAudience: [] }), /audience/);
  });
});
