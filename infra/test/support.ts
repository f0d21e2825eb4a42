// Helpers shared by the template tests: read IAM statements out of a CloudFormation template.

import assert from 'node:assert/strict';

export type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Renders an intrinsic as readable text so ARNs compare as strings:
 * {"Fn::GetAtt":["B","Arn"]} -> "${B.Arn}", {"Ref":"X"} -> "${X}", Fn::Join concatenated,
 * Fn::Sub as its template string.
 */
export function render(v: Json): string {
  if (typeof v === 'string') return v;
  if (v && v['Fn::GetAtt']) return `\${${v['Fn::GetAtt'][0]}.${v['Fn::GetAtt'][1]}}`;
  if (v && v.Ref) return `\${${v.Ref}}`;
  if (v && v['Fn::Join']) return v['Fn::Join'][1].map(render).join(v['Fn::Join'][0]);
  if (v && v['Fn::Sub']) return Array.isArray(v['Fn::Sub']) ? v['Fn::Sub'][0] : v['Fn::Sub'];
  // A resource present only under a condition: `?Condition:<resource>`.
  if (v && v['Fn::If'] && v['Fn::If'][2]?.Ref === 'AWS::NoValue') return `?${v['Fn::If'][0]}:${render(v['Fn::If'][1])}`;
  return JSON.stringify(v);
}

/** One IAM statement with its actions and rendered resources. */
export interface Stmt {
  effect: string;
  actions: string[];
  resources: string[];
  /** The statement's Condition block, if any (intrinsics left as they are). */
  condition?: Json;
}

/** Every statement of every policy attached to a role (inline or AWS::IAM::Policy); no managed ones. */
export function roleStatements(resources: Record<string, Json>, roleId: string): Stmt[] {
  const out: Stmt[] = [];
  const add = (doc: Json) => {
    for (const conditional of doc.Statement) {
      // A statement present only under a condition counts as present.
      const st = conditional['Fn::If'] ? conditional['Fn::If'][1] : conditional;
      out.push({ effect: st.Effect, actions: [st.Action].flat(), resources: [st.Resource].flat().map(render), condition: st.Condition });
    }
  };
  const role = resources[roleId];
  assert.ok(role, `role ${roleId} exists`);
  assert.deepEqual(role.Properties.ManagedPolicyArns ?? [], [], `${roleId}: no managed policies`);
  for (const p of role.Properties.Policies ?? []) add(p.PolicyDocument);
  for (const r of Object.values<Json>(resources)) {
    if (r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: Json) => x.Ref === roleId)) add(r.Properties.PolicyDocument);
  }
  assert.ok(out.length > 0, `${roleId} has statements`);
  return out;
}

/** Resources on which the statements allow an action (exact action name), sorted. */
export function allowed(stmts: Stmt[], action: string): string[] {
  return stmts
    .filter((st) => st.effect === 'Allow' && st.actions.includes(action))
    .flatMap((st) => st.resources)
    .sort();
}

/** The statements that allow an action (exact action name). */
export function allowing(stmts: Stmt[], action: string): Stmt[] {
  return stmts.filter((st) => st.effect === 'Allow' && st.actions.includes(action));
}

/** Logical ids of every IAM role in a template. */
export function roleIds(resources: Record<string, Json>): string[] {
  return Object.entries<Json>(resources)
    .filter(([, r]) => r.Type === 'AWS::IAM::Role')
    .map(([id]) => id)
    .sort();
}
