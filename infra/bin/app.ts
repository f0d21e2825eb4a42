#!/usr/bin/env node
// The CDK app: one stack holding an AlgaExtensionRunner, configured by context (-c key=value)
// so that `cdk deploy` needs no code change. See docs/deploying.md.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AlgaExtensionRunner, AlgaFunctionKey, AlgaFunctionOptions, FUNCTION_BINARIES } from '../lib/alga-extension-runner';

const app = new App();
const ctx = (key: string): string | undefined => {
  const v = app.node.tryGetContext(key);
  return v === undefined || v === null || v === '' ? undefined : String(v);
};
const num = (key: string): number | undefined => {
  const v = ctx(key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`context ${key} must be an integer, got '${v}'`);
  return n;
};

const seconds = (key: string): Duration | undefined => {
  const n = num(key);
  return n === undefined ? undefined : Duration.seconds(n);
};

const jwtIssuer = ctx('jwtIssuer');
const jwtAudience = ctx('jwtAudience');
if (!jwtIssuer || !jwtAudience) {
  throw new Error('set -c jwtIssuer=https://... -c jwtAudience=aud1,aud2 (the JWT authorizer of /api/ext/...)');
}

// `-c stubCode=true` synthesizes without the Rust binaries (CI, a first look): every function
// gets a stub bootstrap that fails loudly if it is ever deployed and invoked.
const stubDir = ctx('stubCode') === 'true' ? makeStubBootstrap() : undefined;

const fnOptions = (prefix: AlgaFunctionKey): AlgaFunctionOptions => {
  return {
    memorySize: num(`${prefix}MemorySize`),
    timeout: seconds(`${prefix}Timeout`),
    reservedConcurrency: num(`${prefix}ReservedConcurrency`),
    code: stubDir ?? ctx(`${prefix}Code`),
  };
};

const architecture = ctx('architecture') ?? 'x86_64';
if (architecture !== 'arm64' && architecture !== 'x86_64') {
  throw new Error(`context architecture must be arm64 or x86_64, got '${architecture}'`);
}

const stack = new Stack(app, ctx('stackName') ?? 'AlgaLambda', {
  description: 'alga-lambda: multi-tenant WebAssembly extensions on AWS Lambda',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
// Operator credentials kept in Secrets Manager, named by their ARNs.
const secretArn = (key: string, id: string): secretsmanager.ISecret | undefined => {
  const arn = ctx(key);
  return arn === undefined ? undefined : secretsmanager.Secret.fromSecretCompleteArn(stack, id, arn);
};
const runner = new AlgaExtensionRunner(stack, 'Runner', {
  architecture: architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
  execute: fnOptions('execute'),
  uiAssets: fnOptions('uiAssets'),
  publish: fnOptions('publish'),
  events: fnOptions('events'),
  lambdaDir: ctx('lambdaDir'),
  executeAuth: (['iam', 'private'] as const).find((m) => m === ctx('executeAuth')) ?? 'token',
  hostAppVpcEndpointId: ctx('hostAppVpcEndpointId'),
  bundleTrust: ctx('bundleTrust') === 'host-pinned' ? 'host-pinned' : 'signature',
  hostAppWriterArn: ctx('hostAppWriterArn'),
  installSource: ctx('installSource') === 'caller' ? 'caller' : 'registry',
  hostAppApiBase: ctx('hostAppApiBase'),
  hostAppUiProxyBase: ctx('hostAppUiProxyBase'),
  hostStores: (ctx('hostStores') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s): s is 'kv' | 'schedules' => s === 'kv' || s === 'schedules'),
  vaultAddr: ctx('vaultAddr'),
  vaultTokenSecret: secretArn('vaultTokenSecretArn', 'VaultTokenSecret'),
  hostAppApiKeySecret: secretArn('hostAppApiKeySecretArn', 'HostAppApiKeySecret'),
  jwtIssuer,
  jwtAudience: jwtAudience.split(',').map((a) => a.trim()).filter((a) => a !== ''),
  tenantClaim: ctx('tenantClaim'),
  userClaim: ctx('userClaim'),
  signingTrustBundle: ctx('signingTrustBundle'),
  secretsPrefix: ctx('secretsPrefix'),
  uploadPrefix: ctx('uploadPrefix'),
  quotaPerMinute: num('quotaPerMinute'),
  quotaPerDay: num('quotaPerDay'),
  egressAllowlist: ctx('egressAllowlist'),
  uiFrameAncestors: ctx('uiFrameAncestors'),
  eventBusName: ctx('eventBusName'),
  eventSources: ctx('eventSources')?.split(','),
  eventsQueueVisibilityTimeout: seconds('eventsQueueVisibilityTimeout'),
  eventsMaxReceiveCount: num('eventsMaxReceiveCount'),
  logRetention: num('logRetentionDays') as logs.RetentionDays | undefined,
  scheduleGroupName: ctx('scheduleGroupName'),
  alarmEmail: ctx('alarmEmail'),
});

// The same outputs as template.yaml.
const outputs: Record<string, [string, string]> = {
  ApiUrl: [runner.httpApi.apiEndpoint, "Base URL of the HTTP API (the Alga server's RUNNER_BASE_URL)."],
  UiBaseUrl: [`https://${runner.distribution.distributionDomainName}`, 'Base URL of extension UIs (RUNNER_PUBLIC_BASE).'],
  AlgaBucketName: [runner.bucket.bucketName, 'ALGA_BUCKET (bundles/, ui/, artifacts/).'],
  UploadBucketName: [runner.uploadBucket.bucketName, 'ALGA_UPLOAD_BUCKET; new objects under the upload prefix trigger publish.'],
  TableName: [runner.table.tableName, 'ALGA_TABLE.'],
  RunnerServiceTokenSecretArn: [runner.runnerServiceTokenSecret.secretArn, 'Secret holding the x-runner-service-token value.'],
  PublishTokenSecretArn: [runner.publishTokenSecret.secretArn, 'Secret holding the POST /v1/publish operator token.'],
  EventsQueueUrl: [runner.eventsQueue.queueUrl, 'Queue fed by the EventBridge rule.'],
  EventsDeadLetterQueueUrl: [runner.eventsDeadLetterQueue.queueUrl, 'Dead-letter queue of the events queue.'],
  DeliveryDeadLetterQueueUrl: [runner.deliveryDeadLetterQueue.queueUrl, "ALGA_EVENTS_DLQ_URL, the events function's dead letters with their reason."],
  ScheduleGroupName: [runner.scheduleGroup.ref, "ALGA_SCHEDULER_GROUP, the EventBridge Scheduler group of extensions' schedules."],
  SchedulerRoleArn: [runner.schedulerRole.roleArn, 'ALGA_SCHEDULER_ROLE_ARN, the role EventBridge Scheduler invokes events with.'],
  AlarmTopicArn: [runner.alarmTopic.topicArn, 'SNS topic of the alarms.'],
};
for (const [id, [value, description]] of Object.entries(outputs)) new CfnOutput(stack, id, { value, description });

/** A folder with a `bootstrap` that only says the real one was never built. */
function makeStubBootstrap(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alga-stub-bootstrap-'));
  fs.writeFileSync(
    path.join(dir, 'bootstrap'),
    `#!/bin/sh\necho "stub bootstrap: build ${Object.values(FUNCTION_BINARIES).join(', ')} with cargo lambda" >&2\nexit 1\n`,
    { mode: 0o755 },
  );
  return dir;
}
