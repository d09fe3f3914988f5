/**
 * Validates Kubernetes manifests against the API's OpenAPI schemas, without a cluster: the
 * validators `kubernetes-models` generates from the Kubernetes OpenAPI spec (types, required
 * fields, enums, formats), and those of `@kubernetes-models/prometheus-operator` for the
 * ServiceMonitor CRD.
 *
 * Those validators, like the API server by default, let unknown fields through, so a misspelt
 * optional field (`readinesProbe`) would pass. The API server's strict field validation
 * (`kubectl --validate=strict`) refuses them, and so does this: the document is handed to the
 * validator through proxies that record which properties the schema reads at every object. A
 * generated validator reads every property its schema defines and enumerates the keys of maps
 * (labels, ConfigMap data), so a key that was neither read nor enumerated is not in the schema.
 * An object the schema does not look into at all (free-form) is left alone.
 */
import { createRequire } from 'node:module';
import { parseAllDocuments } from 'yaml';

const require = createRequire(import.meta.url);

/** Where the model classes of each apiVersion live. */
const MODEL_PACKAGES: Record<string, string> = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'policy/v1': 'kubernetes-models/policy/v1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

interface Model {
  prototype: { validate(this: unknown): void };
}

interface Reads {
  keys: Set<string>;
  enumerated: boolean;
}

export interface Manifest {
  kind: string;
  apiVersion: string;
  metadata: { name: string; labels?: Record<string, string>; namespace?: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  [key: string]: unknown;
}

/** The documents of a YAML stream, empty ones (comments only) left out. Throws on a YAML error. */
export function parseManifests(text: string, source: string): Manifest[] {
  const manifests: Manifest[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((error) => error.message).join('; ')}`);
    const value = doc.toJS() as unknown;
    if (value !== null && value !== undefined) manifests.push(value as Manifest);
  }
  return manifests;
}

/** Wraps `root` in proxies that record, per object, the keys read and whether its keys were listed. */
function spy(root: unknown, reads: Map<object, Reads>): unknown {
  const proxies = new WeakMap<object, object>();
  const wrap = (value: unknown): unknown => {
    if (value === null || typeof value !== 'object') return value;
    const existing = proxies.get(value);
    if (existing !== undefined) return existing;
    const record: Reads = { keys: new Set(), enumerated: false };
    reads.set(value, record);
    const proxy = new Proxy(value, {
      get(target, key, receiver) {
        if (typeof key === 'string') record.keys.add(key);
        return wrap(Reflect.get(target, key, receiver));
      },
      has(target, key) {
        if (typeof key === 'string') record.keys.add(key);
        return Reflect.has(target, key);
      },
      ownKeys(target) {
        record.enumerated = true;
        return Reflect.ownKeys(target);
      },
    });
    proxies.set(value, proxy);
    return proxy;
  };
  return wrap(root);
}

function unknownFields(value: unknown, path: string, reads: Map<object, Reads>, problems: string[]): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => unknownFields(item, `${path}/${index}`, reads, problems));
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const record = reads.get(value);
  if (record === undefined || (record.keys.size === 0 && !record.enumerated)) return;
  for (const [key, child] of Object.entries(value)) {
    if (!record.enumerated && !record.keys.has(key)) problems.push(`${path}/${key}: unknown field`);
    else unknownFields(child, `${path}/${key}`, reads, problems);
  }
}

/** Every problem with one manifest: schema violations and unknown fields; empty when valid. */
export function validateManifest(manifest: Manifest): string[] {
  const where = `${manifest.kind ?? '?'} ${manifest.metadata?.name ?? '?'}`;
  const modelPackage = MODEL_PACKAGES[manifest.apiVersion];
  if (modelPackage === undefined) return [`${where}: no schema for apiVersion ${String(manifest.apiVersion)}`];
  let model: Model | undefined;
  try {
    model = (require(`${modelPackage}/${manifest.kind}`) as Record<string, Model>)[manifest.kind];
  } catch {
    model = undefined;
  }
  if (model === undefined) return [`${where}: no schema for kind ${String(manifest.kind)} in ${manifest.apiVersion}`];
  const problems: string[] = [];
  const reads = new Map<object, Reads>();
  try {
    model.prototype.validate.call(spy(manifest, reads));
  } catch (error) {
    problems.push((error as Error).message);
  }
  unknownFields(manifest, 'data', reads, problems);
  return problems.map((problem) => `${where}: ${problem}`);
}

/** Problems of every manifest in a YAML stream. */
export function validateYaml(text: string, source: string): string[] {
  return parseManifests(text, source).flatMap((manifest) => validateManifest(manifest).map((problem) => `${source}: ${problem}`));
}
