// Assertions on ../template.yaml as SAM translates it (infra/tools/sam_translate.py, offline):
// the same resources and IAM boundaries the CDK construct is tested for, so the two stay alike.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { allowed, allowing, Json, render, roleIds, roleStatements } from './support';

const ROOT = path.resolve(__dirname, '..', '..');
const PYTHON = path.join(ROOT, '.venv', 'bin', 'python');

function translate(): Json {
  assert.ok(fs.existsSync(PYTHON), `${PYTHON} is missing: scripts/test-infra installs it`);
  const out = execFileSync(PYTHON, [path.join(ROOT, 'infra', 'tools', 'sam_translate.py'), path.join(ROOT, 'template.yaml')], {
    env: { ...process.env, AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION ?? 'us-east-1' },
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(out.toString('utf8'));
}

const FUNCTIONS = {
  ExecuteFunction: 'fn-execute',
  UiAssetsFunction: 'fn-ui-assets',
  PublishFunction: 'fn-publish',
  EventsFunction: 'fn-events',
} as const;

describe('template.yaml (SAM, translated)', () => {
  let t: Json;
  let r: Record<string, Json>;
  const ofType = (type: string) => Object.entries<Json>(r).filter(([, v]) => v.Type === type);
  const stmts = (fn: keyof typeof FUNCTIONS) => roleStatements(r, r[fn].Properties.Role['Fn::GetAtt'][0]);

  before(() => {
    t = translate();
    r = t.Resources;
  });

  test('the SAM source builds each function with cargo-lambda from its own crate folder', () => {
    // The translation drops Metadata and CodeUri; read the source for them (a line scan is
    // enough for these keys and keeps the test free of a YAML parser).
    const src = fs.readFileSync(path.join(ROOT, 'template.yaml'), 'utf8');
    for (const [id, bin] of Object.entries(FUNCTIONS)) {
      const start = src.indexOf(`\n  ${id}:\n`);
      assert.ok(start >= 0, id);
      const next = src.slice(start + 1).search(/\n  [A-Za-z]/);
      const block = src.slice(start, start + 1 + next);
      assert.match(block, /BuildMethod: rust-cargolambda/, id);
      assert.match(block, new RegExp(`Binary: ${bin}$`, 'm'), id);
      // Not the workspace root: there cargo would unify features across all four crates and
      // execute would carry publish's Cranelift.
      assert.match(block, new RegExp(`CodeUri: functions/${bin.slice(3)}$`, 'm'), id);
    }
  });

  test('inventory: exactly these resources (a new one must come with its test)', () => {
    const counts: Record<string, number> = {};
    for (const v of Object.values<Json>(r)) counts[v.Type] = (counts[v.Type] ?? 0) + 1;
    assert.deepEqual(counts, {
      // The private execute API (conditional: only with ExecuteAuth=private).
      'AWS::ApiGateway::Deployment': 1,
      'AWS::ApiGateway::Method': 1,
      'AWS::ApiGateway::Resource': 2,
      'AWS::ApiGateway::RestApi': 1,
      'AWS::ApiGateway::Stage': 1,
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
      'AWS::IAM::Role': 5, // one per function, and the one EventBridge Scheduler assumes
      'AWS::Lambda::EventSourceMapping': 1,
      'AWS::Lambda::Function': 4,
      'AWS::Lambda::Permission': 9, // incl. S3 -> publish for the upload prefix, sha256/ and tenants/
      'AWS::Lambda::Url': 1,
      'AWS::Logs::LogGroup': 5,
      'AWS::S3::Bucket': 2,
      'AWS::S3::BucketPolicy': 2,
      'AWS::SNS::Subscription': 1, // conditional: only with AlarmEmail
      'AWS::SNS::Topic': 1,
      'AWS::SQS::Queue': 3, // events queue, its redrive DLQ, the delivery dead letters
      'AWS::SQS::QueuePolicy': 1,
      'AWS::Scheduler::ScheduleGroup': 1,
      'AWS::SecretsManager::Secret': 2,
    });
    assert.equal(r.AlarmEmailSubscription.Condition, 'HasAlarmEmail');
  });

  test('four provided.al2023 functions with the Architecture parameter, X-Ray, JSON logs', () => {
    const fns = ofType('AWS::Lambda::Function');
    assert.deepEqual(fns.map(([id]) => id).sort(), Object.keys(FUNCTIONS).sort());
    for (const [id, fn] of fns) {
      const p = fn.Properties;
      assert.equal(p.Runtime, 'provided.al2023', id);
      assert.equal(p.Handler, 'bootstrap', id);
      assert.deepEqual(p.Architectures, [{ Ref: 'Architecture' }], id);
      assert.deepEqual(p.TracingConfig, { Mode: 'Active' }, id);
      assert.equal(p.LoggingConfig.LogFormat, 'JSON', id);
      assert.ok(p.ReservedConcurrentExecutions['Fn::If'], `${id}: reserved concurrency is a parameter`);
      assert.ok(p.MemorySize.Ref && p.Timeout.Ref, `${id}: memory and timeout are parameters`);
    }
    assert.deepEqual(t.Parameters.Architecture.AllowedValues, ['arm64', 'x86_64']);
  });

  test('storage: TLS-only buckets, the single table, two generated secrets', () => {
    assert.equal(ofType('AWS::S3::Bucket').length, 2);
    for (const [id, b] of ofType('AWS::S3::Bucket')) {
      assert.equal(b.Properties.PublicAccessBlockConfiguration.RestrictPublicBuckets, true, id);
      assert.ok(b.Properties.BucketEncryption, id);
      const policy = ofType('AWS::S3::BucketPolicy').find(([, p]) => p.Properties.Bucket.Ref === id);
      assert.ok(policy, `${id} has a bucket policy`);
      assert.equal(policy[1].Properties.PolicyDocument.Statement[0].Condition.Bool['aws:SecureTransport'], 'false');
    }
    const table = r.Table.Properties;
    assert.equal(table.BillingMode, 'PAY_PER_REQUEST');
    assert.deepEqual(table.TimeToLiveSpecification, { AttributeName: 'ttl', Enabled: true });
    assert.equal(table.GlobalSecondaryIndexes[0].IndexName, 'gsi1');
    assert.equal(table.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled, true);
    assert.equal(ofType('AWS::SecretsManager::Secret').length, 2);
  });

  test("publish is notified for the upload prefix and Alga's store layout; events consumes the queue with partial batch failures", () => {
    const cfgs = r.UploadBucket.Properties.NotificationConfiguration.LambdaConfigurations;
    for (const cfg of cfgs) {
      assert.equal(cfg.Event, 's3:ObjectCreated:*');
      assert.deepEqual(cfg.Function, { 'Fn::GetAtt': ['PublishFunction', 'Arn'] });
    }
    const prefixes = cfgs.map((c: Json) => c.Filter.S3Key.Rules[0].Value);
    assert.deepEqual(prefixes, ['sha256/', 'tenants/', { Ref: 'UploadPrefix' }]);
    // publish reads there and writes only the result records.
    const uploads = 'arn:${AWS::Partition}:s3:::alga-uploads-${StackUuid}/';
    assert.deepEqual(
      allowed(stmts('PublishFunction'), 's3:DeleteObject').filter((a) => a.startsWith(uploads)),
      ['${UploadPrefix}*.result.json', 'sha256/*.result.json', 'tenants/*.result.json'].map((k) => uploads + k),
    );
    for (const k of ['${UploadPrefix}*', 'sha256/*', 'tenants/*']) {
      assert.ok(allowed(stmts('PublishFunction'), 's3:GetObject').includes(uploads + k), k);
    }
    const [[, esm]] = ofType('AWS::Lambda::EventSourceMapping');
    assert.deepEqual(esm.Properties.FunctionResponseTypes, ['ReportBatchItemFailures']);
    assert.deepEqual(esm.Properties.EventSourceArn, { 'Fn::GetAtt': ['EventsQueue', 'Arn'] });
    assert.deepEqual(r.EventsQueue.Properties.RedrivePolicy.deadLetterTargetArn, { 'Fn::GetAtt': ['EventsDeadLetterQueue', 'Arn'] });
    assert.deepEqual(r.EventsRule.Properties.Targets[0].Arn, { 'Fn::GetAtt': ['EventsQueue', 'Arn'] });
  });

  test('HTTP API routes and their authorization', () => {
    const routes = Object.fromEntries(ofType('AWS::ApiGatewayV2::Route').map(([, v]) => [v.Properties.RouteKey, v.Properties]));
    assert.deepEqual(Object.keys(routes).sort(), ['ANY /api/ext/{extensionId}/{proxy+}', 'POST /v1/execute', 'POST /v1/publish']);
    assert.deepEqual(routes['POST /v1/execute'].AuthorizationType, { 'Fn::If': ['ExecuteUsesIam', 'AWS_IAM', 'NONE'] });
    assert.equal(routes['ANY /api/ext/{extensionId}/{proxy+}'].AuthorizationType, 'JWT');
    assert.deepEqual(r.JwtAuthorizer.Properties.JwtConfiguration, { Issuer: { Ref: 'JwtIssuer' }, Audience: { Ref: 'JwtAudience' } });
  });

  test('private execute: a PRIVATE REST API only the host app endpoint reaches, instead of the HTTP API route', () => {
    // The public route and its permission exist only outside private mode...
    assert.equal(r.ExecuteRoute.Condition, 'ExecuteOnHttpApi');
    assert.equal(r.ExecuteApiPermission.Condition, 'ExecuteOnHttpApi');
    assert.deepEqual(t.Conditions.ExecuteIsPrivate, { 'Fn::Equals': [{ Ref: 'ExecuteAuth' }, 'private'] });
    assert.deepEqual(t.Conditions.ExecuteOnHttpApi, { 'Fn::Not': [{ Condition: 'ExecuteIsPrivate' }] });
    // ...and in it, every private resource.
    for (const id of ['PrivateExecuteApi', 'PrivateExecuteV1Resource', 'PrivateExecuteResource', 'PrivateExecuteMethod',
      'PrivateExecuteDeployment', 'PrivateExecuteStage', 'PrivateExecuteApiPermission']) {
      assert.equal(r[id].Condition, 'ExecuteIsPrivate', id);
    }
    const api = r.PrivateExecuteApi.Properties;
    assert.deepEqual(api.EndpointConfiguration, { Types: ['PRIVATE'], VpcEndpointIds: [{ Ref: 'HostAppVpcEndpointId' }] });
    const deny = api.Policy.Statement.find((s: Json) => s.Effect === 'Deny');
    assert.deepEqual(deny.Condition, { StringNotEquals: { 'aws:SourceVpce': { Ref: 'HostAppVpcEndpointId' } } });
    assert.equal(deny.Resource, 'execute-api:/*');
    const allow = api.Policy.Statement.find((s: Json) => s.Effect === 'Allow');
    assert.equal(allow.Resource, 'execute-api:/*/POST/v1/execute');
    const method = r.PrivateExecuteMethod.Properties;
    assert.equal(method.HttpMethod, 'POST');
    assert.equal(method.AuthorizationType, 'NONE');
    assert.equal(method.Integration.Type, 'AWS_PROXY');
    assert.equal(r.PrivateExecuteResource.Properties.PathPart, 'execute');
    // The function knows the endpoint to check it again, and the stack refuses private
    // mode without one.
    const env = r.ExecuteFunction.Properties.Environment.Variables;
    assert.deepEqual(env.ALGA_EXECUTE_VPC_ENDPOINT_IDS, { Ref: 'HostAppVpcEndpointId' });
    const rule = t.Rules.PrivateExecuteNeedsTheHostAppsEndpoint;
    assert.deepEqual(rule.RuleCondition, { 'Fn::Equals': [{ Ref: 'ExecuteAuth' }, 'private'] });
    assert.deepEqual(rule.Assertions[0].Assert, { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'HostAppVpcEndpointId' }, ''] }] });
    assert.deepEqual(t.Parameters.ExecuteAuth.AllowedValues, ['token', 'iam', 'private']);
  });

  test('bundle trust: every guest-running function and publish get ALGA_BUNDLE_TRUST; host-pinned locks the upload bucket', () => {
    for (const fn of ['ExecuteFunction', 'PublishFunction', 'EventsFunction']) {
      assert.deepEqual(r[fn].Properties.Environment.Variables.ALGA_BUNDLE_TRUST, { Ref: 'BundleTrust' }, fn);
    }
    assert.deepEqual(t.Parameters.BundleTrust.AllowedValues, ['signature', 'host-pinned']);
    assert.equal(t.Parameters.BundleTrust.Default, 'signature');
    const rule = t.Rules.HostPinnedNeedsTheOnlyWriter;
    assert.deepEqual(rule.RuleCondition, { 'Fn::Equals': [{ Ref: 'BundleTrust' }, 'host-pinned'] });
    assert.deepEqual(rule.Assertions[0].Assert, { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'HostAppWriterArn' }, ''] }] });
    const conditional = r.UploadBucketPolicy.Properties.PolicyDocument.Statement.find((s: Json) => s['Fn::If']);
    assert.ok(conditional, 'the upload bucket policy has a host-pinned statement');
    const [condition, deny, otherwise] = conditional['Fn::If'];
    assert.equal(condition, 'BundlesAreHostPinned');
    assert.deepEqual(otherwise, { Ref: 'AWS::NoValue' });
    assert.equal(deny.Effect, 'Deny');
    assert.deepEqual(deny.Action, ['s3:PutObject', 's3:DeleteObject']);
    assert.deepEqual(deny.Condition.StringNotEquals['aws:PrincipalArn'], [{ Ref: 'HostAppWriterArn' }, { 'Fn::GetAtt': ['PublishRole', 'Arn'] }]);
  });

  test("Alga's host side: host API and host-kept stores for guest runners, ext-ui asks the host app in caller mode, Vault for execute", () => {
    const noValue = { Ref: 'AWS::NoValue' };
    for (const fn of ['ExecuteFunction', 'EventsFunction']) {
      const env = r[fn].Properties.Environment.Variables;
      assert.deepEqual(env.ALGA_HOST_API_BASE, { 'Fn::If': ['HasHostAppApi', { Ref: 'HostAppApiBase' }, noValue] }, fn);
      assert.deepEqual(env.ALGA_HOST_API_BRIDGE_TOKEN_SECRET_ID, { 'Fn::If': ['HasHostAppApi', { Ref: 'RunnerServiceTokenSecret' }, noValue] }, fn);
      assert.deepEqual(env.ALGA_HOST_STORES, { 'Fn::If': ['HasHostStores', { Ref: 'HostStores' }, noValue] }, fn);
      // The host app fires the schedules it keeps: the mirror's target only otherwise.
      assert.equal(env.ALGA_SCHEDULER_TARGET_ARN['Fn::If'][0], 'MirrorsSchedules', fn);
      assert.deepEqual(env.ALGA_SCHEDULER_TARGET_ARN['Fn::If'][2], noValue, fn);
    }
    const ex = r.ExecuteFunction.Properties.Environment.Variables;
    assert.deepEqual(ex.ALGA_VAULT_ADDR, { 'Fn::If': ['HasVault', { Ref: 'VaultAddr' }, noValue] });
    assert.deepEqual(ex.ALGA_VAULT_TOKEN_SECRET_ID, { 'Fn::If': ['HasVaultToken', { Ref: 'VaultTokenSecretArn' }, noValue] });
    const ui = r.UiAssetsFunction.Properties.Environment.Variables;
    assert.deepEqual(ui.ALGA_INSTALL_SOURCE, { Ref: 'InstallSource' });
    assert.deepEqual(ui.ALGA_HOST_API_BASE, { 'Fn::If': ['InstallsFromCaller', { Ref: 'HostAppApiBase' }, noValue] });
    assert.deepEqual(ui.ALGA_HOST_API_KEY_SECRET_ID, { 'Fn::If': ['HasHostAppApiKey', { Ref: 'HostAppApiKeySecretArn' }, noValue] });
    for (const [name, param] of [['CallerInstallsNeedTheHostApp', 'InstallSource'], ['HostStoresNeedTheHostApp', 'HostStores']]) {
      const rule = t.Rules[name];
      assert.ok(JSON.stringify(rule.RuleCondition).includes(param), name);
      assert.deepEqual(rule.Assertions[0].Assert, { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'HostAppApiBase' }, ''] }] }, name);
    }
    assert.deepEqual(t.Parameters.HostStores.AllowedValues, ['none', 'kv', 'schedules', 'kv,schedules']);
  });

  test('ui-assets behind CloudFront: IAM function URL, lambda OAC, both invoke permissions', () => {
    assert.equal(r.UiAssetsFunctionUrl.Properties.AuthType, 'AWS_IAM');
    assert.equal(r.UiOriginAccessControl.Properties.OriginAccessControlConfig.OriginAccessControlOriginType, 'lambda');
    const origin = r.UiDistribution.Properties.DistributionConfig.Origins[0];
    assert.deepEqual(origin.OriginAccessControlId, { 'Fn::GetAtt': ['UiOriginAccessControl', 'Id'] });
    assert.equal(r.UiAssetsUrlPermission.Properties.Action, 'lambda:InvokeFunctionUrl');
    assert.equal(r.UiAssetsInvokePermission.Properties.InvokedViaFunctionUrl, true);
    assert.equal(r.UiCachePolicy.Properties.CachePolicyConfig.MaxTTL, 31536000);
    // The origin's answer depends on tenant= (404 for another tenant's bundle): it is in the key.
    assert.deepEqual(r.UiCachePolicy.Properties.CachePolicyConfig.ParametersInCacheKeyAndForwardedToOrigin.QueryStringsConfig, {
      QueryStringBehavior: 'whitelist',
      QueryStrings: ['tenant'],
    });
    assert.ok(r.UiResponseHeadersPolicy.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig.StrictTransportSecurity);
  });

  test('alarms: errors and throttles per function, DLQ depth', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, v]) => v.Properties);
    assert.equal(alarms.length, 10);
    for (const fn of Object.keys(FUNCTIONS)) {
      for (const metric of ['Errors', 'Throttles']) {
        assert.ok(alarms.some((a) => a.MetricName === metric && a.Dimensions[0].Value.Ref === fn), `${metric} ${fn}`);
      }
    }
    for (const q of ['EventsDeadLetterQueue', 'DeliveryDeadLetterQueue']) {
      assert.ok(alarms.some((a) => a.Namespace === 'AWS/SQS' && render(a.Dimensions[0].Value) === `\${${q}.QueueName}`), q);
    }
  });

  test('IAM: execute reads bundles/ ui/ artifacts/, never writes S3; secrets under the prefix', () => {
    const st = stmts('ExecuteFunction');
    assert.deepEqual(allowed(st, 's3:GetObject'), ['${AlgaBucket.Arn}/artifacts/*', '${AlgaBucket.Arn}/bundles/*', '${AlgaBucket.Arn}/ui/*']);
    assert.ok(!st.some((x) => x.actions.some((a) => a.startsWith('s3:Put') || a.startsWith('s3:Delete') || a === 's3:*')));
    assert.deepEqual(allowed(st, 'secretsmanager:GetSecretValue'), [
      '${RunnerServiceTokenSecret}',
      '?HasVaultToken:${VaultTokenSecretArn}',
      'arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretsPrefix}*',
    ]);
    assert.deepEqual(allowed(st, 'dynamodb:PutItem'), ['${Table.Arn}', '${Table.Arn}/index/*']);
  });

  test('IAM: only publish writes bundles/ ui/ artifacts/', () => {
    const published = ['${AlgaBucket.Arn}/artifacts/*', '${AlgaBucket.Arn}/bundles/*', '${AlgaBucket.Arn}/ui/*'];
    // In the Alga bucket exactly the published prefixes; in the upload bucket only result records.
    const writes = allowed(stmts('PublishFunction'), 's3:PutObject');
    assert.deepEqual(writes.filter((a) => a.startsWith('${AlgaBucket.Arn}')), published);
    assert.ok(writes.filter((a) => !a.startsWith('${AlgaBucket.Arn}')).every((a) => a.endsWith('*.result.json')), writes.join(', '));
    for (const fn of ['ExecuteFunction', 'UiAssetsFunction', 'EventsFunction'] as const) {
      assert.deepEqual(allowed(stmts(fn), 's3:PutObject'), [], fn);
      assert.deepEqual(allowed(stmts(fn), 's3:DeleteObject'), [], fn);
    }
    assert.deepEqual(allowed(stmts('PublishFunction'), 'secretsmanager:GetSecretValue'), ['${PublishTokenSecret}']);
  });

  test('IAM: ui-assets reads ui/ and the table; events the table, its queue and the delivery DLQ', () => {
    const ui = stmts('UiAssetsFunction');
    assert.deepEqual(allowed(ui, 's3:GetObject'), ['${AlgaBucket.Arn}/ui/*']);
    assert.deepEqual(allowed(ui, 'dynamodb:PutItem'), []);
    assert.deepEqual(allowed(ui, 'dynamodb:GetItem'), ['${Table.Arn}', '${Table.Arn}/index/*']);
    const ev = stmts('EventsFunction');
    for (const a of ['sqs:ReceiveMessage', 'sqs:DeleteMessage']) assert.deepEqual(allowed(ev, a), ['${EventsQueue.Arn}'], a);
    assert.deepEqual(allowed(ev, 'sqs:SendMessage'), ['${DeliveryDeadLetterQueue.Arn}', '${EventsQueue.Arn}']);
    assert.deepEqual(allowed(ev, 'dynamodb:UpdateItem'), ['${Table.Arn}', '${Table.Arn}/index/*']);
  });

  test("IAM: events runs guests with execute's reads: S3 (no write), install secrets (the service token only as the host app's bridge credential)", () => {
    const ev = stmts('EventsFunction');
    const ex = stmts('ExecuteFunction');
    assert.deepEqual(allowed(ev, 's3:GetObject'), allowed(ex, 's3:GetObject'));
    assert.ok(allowed(ev, 's3:GetObject').includes('${AlgaBucket.Arn}/artifacts/*'));
    assert.deepEqual(allowed(ev, 's3:ListBucket'), ['${AlgaBucket.Arn}']);
    assert.ok(!ev.some((x) => x.actions.some((a) => /^s3:(Put|Delete)/.test(a))), 'events writes nothing in S3');
    assert.deepEqual(allowed(ev, 'secretsmanager:GetSecretValue'), [
      '?HasHostAppApi:${RunnerServiceTokenSecret}',
      'arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretsPrefix}*',
    ]);
  });

  test('delivery dead letters: own queue (SSE, 14 days, TLS only), only events may send, DLQ URL in its env', () => {
    const q = r.DeliveryDeadLetterQueue.Properties;
    assert.equal(q.SqsManagedSseEnabled, true);
    assert.equal(q.MessageRetentionPeriod, 1209600);
    assert.equal(q.RedrivePolicy, undefined, 'a dead-letter queue redrives nowhere');
    const [[, policy]] = ofType('AWS::SQS::QueuePolicy');
    assert.ok(policy.Properties.Queues.some((x: Json) => x.Ref === 'DeliveryDeadLetterQueue'));
    const deny = policy.Properties.PolicyDocument.Statement.find((st: Json) => st.Effect === 'Deny');
    assert.deepEqual(deny.Condition, { Bool: { 'aws:SecureTransport': 'false' } });
    assert.ok(deny.Resource.map(render).includes('${DeliveryDeadLetterQueue.Arn}'));
    // No allow in the queue policy (only the rule's send to the events queue), and no role but
    // events' has any SQS action on it.
    for (const st of policy.Properties.PolicyDocument.Statement.filter((x: Json) => x.Effect === 'Allow')) {
      assert.deepEqual([st.Resource].flat().map(render), ['${EventsQueue.Arn}']);
    }
    for (const role of roleIds(r)) {
      const onDlq = roleStatements(r, role).filter((st) => st.resources.includes('${DeliveryDeadLetterQueue.Arn}'));
      if (role === 'EventsRole') assert.deepEqual(onDlq.flatMap((st) => st.actions), ['sqs:SendMessage']);
      else assert.deepEqual(onDlq, [], role);
    }
    assert.deepEqual(r.EventsFunction.Properties.Environment.Variables.ALGA_EVENTS_DLQ_URL, { Ref: 'DeliveryDeadLetterQueue' });
    assert.equal(r.ExecuteFunction.Properties.Environment.Variables.ALGA_EVENTS_DLQ_URL, undefined);
    // The redrive DLQ stays the events queue's own.
    assert.deepEqual(r.EventsQueue.Properties.RedrivePolicy.deadLetterTargetArn, { 'Fn::GetAtt': ['EventsDeadLetterQueue', 'Arn'] });
  });

  test('events rule: the EventSources parameter or the alga.extension/ prefix, on the EventBusName bus', () => {
    const rule = r.EventsRule.Properties;
    assert.deepEqual(rule.EventBusName, { Ref: 'EventBusName' });
    assert.deepEqual(rule.EventPattern, {
      $or: [{ source: { Ref: 'EventSources' } }, { source: [{ prefix: 'alga.extension/' }] }],
    });
    assert.equal(t.Parameters.EventBusName.Default, 'default');
  });

  test('guests emit: execute and events may PutEvents on the bus, only with an alga.extension/ source', () => {
    const bus = 'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}';
    for (const fn of ['ExecuteFunction', 'EventsFunction'] as const) {
      const put = allowing(stmts(fn), 'events:PutEvents');
      assert.equal(put.length, 1, fn);
      assert.deepEqual(put[0].resources, [bus], fn);
      assert.deepEqual(put[0].condition, { StringLike: { 'events:source': 'alga.extension/*' } }, fn);
      assert.deepEqual(r[fn].Properties.Environment.Variables.ALGA_EVENT_BUS, { Ref: 'EventBusName' }, fn);
    }
    for (const fn of ['UiAssetsFunction', 'PublishFunction'] as const) {
      assert.deepEqual(allowed(stmts(fn), 'events:PutEvents'), [], fn);
    }
  });

  test('schedules: a group, a role only EventBridge Scheduler assumes, invoking only the events function', () => {
    assert.deepEqual(r.ScheduleGroup.Properties.Name, {
      'Fn::If': ['HasScheduleGroupName', { Ref: 'ScheduleGroupName' }, { Ref: 'AWS::StackName' }],
    });
    const role = r.SchedulerInvokeRole.Properties;
    const trust = role.AssumeRolePolicyDocument.Statement;
    assert.equal(trust.length, 1);
    assert.deepEqual(trust[0].Principal, { Service: 'scheduler.amazonaws.com' });
    assert.deepEqual(trust[0].Condition, { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } });
    const st = roleStatements(r, 'SchedulerInvokeRole');
    const eventsArn = 'arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:alga-events-${StackUuid}';
    assert.deepEqual(st.map((x) => [x.actions, x.resources]), [[['lambda:InvokeFunction'], [eventsArn]]]);
    // The ARN is built from the events function's fixed name; the same name is the function's.
    assert.equal(render(r.EventsFunction.Properties.FunctionName), 'alga-events-${StackUuid}');
    assert.deepEqual(r.EventsFunction.Properties.FunctionName['Fn::Sub'][1], r.SchedulerInvokeRole.Properties.Policies[0].PolicyDocument.Statement[0].Resource['Fn::Sub'][1]);
    for (const fn of ['ExecuteFunction', 'EventsFunction'] as const) {
      const env = r[fn].Properties.Environment.Variables;
      // Unless the host app keeps (and fires) the schedules.
      assert.equal(render(env.ALGA_SCHEDULER_TARGET_ARN), `?MirrorsSchedules:${eventsArn}`, fn);
      assert.deepEqual(env.ALGA_SCHEDULER_ROLE_ARN, { 'Fn::GetAtt': ['SchedulerInvokeRole', 'Arn'] }, fn);
      assert.deepEqual(env.ALGA_SCHEDULER_GROUP, { Ref: 'ScheduleGroup' }, fn);
    }
  });

  test('IAM: execute and events manage schedules in the group and pass only the scheduler role', () => {
    const inGroup = 'arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${ScheduleGroup}/*';
    for (const fn of ['ExecuteFunction', 'EventsFunction'] as const) {
      const st = stmts(fn);
      for (const a of ['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule', 'scheduler:GetSchedule']) {
        assert.deepEqual(allowed(st, a), [inGroup], `${fn} ${a}`);
      }
      assert.ok(!st.some((x) => x.actions.some((a) => a.startsWith('scheduler:') && !a.endsWith('Schedule'))), `${fn}: no group-level actions`);
      const pass = allowing(st, 'iam:PassRole');
      assert.equal(pass.length, 1, fn);
      assert.deepEqual(pass[0].resources, ['${SchedulerInvokeRole.Arn}'], fn);
      assert.deepEqual(pass[0].condition, { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } }, fn);
    }
    for (const role of roleIds(r).filter((x) => x !== 'ExecuteRole' && x !== 'EventsRole')) {
      const st = roleStatements(r, role);
      assert.deepEqual(allowed(st, 'iam:PassRole'), [], role);
      assert.ok(!st.some((x) => x.actions.some((a) => a.startsWith('scheduler:'))), role);
    }
  });

  test("events gets execute's guest settings (not its HTTP auth)", () => {
    const ex = r.ExecuteFunction.Properties.Environment.Variables;
    const ev = r.EventsFunction.Properties.Environment.Variables;
    for (const k of ['ALGA_SECRETS_PREFIX', 'ALGA_QUOTA_PER_MINUTE', 'ALGA_QUOTA_PER_DAY', 'SIGNING_TRUST_BUNDLE', 'ALGA_ARTIFACT_CACHE_DIR', 'EXT_EGRESS_ALLOWLIST', 'ALGA_BACKEND', 'ALGA_BUCKET', 'ALGA_TABLE']) {
      assert.deepEqual(ev[k], ex[k], k);
      assert.notEqual(ev[k], undefined, k);
    }
    for (const k of ['ALGA_EXECUTE_AUTH', 'ALGA_INSTALL_SOURCE', 'RUNNER_SERVICE_TOKEN_SECRET_ID']) assert.equal(ev[k], undefined, k);
  });

  test('IAM: each role logs only to its own group; "*" only for X-Ray; no wildcard actions', () => {
    for (const fn of Object.keys(FUNCTIONS) as (keyof typeof FUNCTIONS)[]) {
      const st = stmts(fn);
      assert.deepEqual(allowed(st, 'logs:PutLogEvents'), [`\${${r[fn].Properties.LoggingConfig.LogGroup.Ref}.Arn}`], fn);
      for (const x of st) {
        if (x.resources.includes('*')) assert.ok(x.actions.every((a) => a.startsWith('xray:')), `${fn}: ${x.actions}`);
        assert.ok(x.actions.every((a) => !a.endsWith(':*') && a !== '*'), `${fn}: ${x.actions}`);
      }
    }
  });
});
