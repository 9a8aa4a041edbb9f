// kubelet's --feature-gates, for the gates nodelet has: "A=true,B=false" parsed as
// component-base's featuregate.Set (pairs split on ",", name and value trimmed,
// the value a Go bool: 1 t T TRUE true True 0 f F FALSE false False; an unknown
// gate is an error, as in kubelet), or the config file's `featureGates` map.
import { invalidArgument } from '../errors.js';

export interface FeatureGates {
  /**
   * The node declares ExtendWebSocketsToKubelet (Node status.declaredFeatures): the v1.36 API server then passes
   * exec/attach/port-forward WebSockets through to the node; without it the API server speaks SPDY/3.1 to us.
   */
  ExtendWebSocketsToKubelet: boolean;
}

export const DEFAULT_FEATURE_GATES: Readonly<FeatureGates> = { ExtendWebSocketsToKubelet: true };

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

function known(name: string): name is keyof FeatureGates {
  return Object.hasOwn(DEFAULT_FEATURE_GATES, name);
}

const bad = (message: string) =>
  invalidArgument('ERR_FEATURE_GATE_INVALID', `--feature-gates: ${message} (known gates: ${Object.keys(DEFAULT_FEATURE_GATES).join(', ')})`);

/** The gates from a flag value or a config file map, over the defaults. Throws ERR_FEATURE_GATE_INVALID. */
export function parseFeatureGates(value: string | Record<string, unknown>, base: Readonly<FeatureGates> = DEFAULT_FEATURE_GATES): FeatureGates {
  const out: FeatureGates = { ...base };
  const pairs: [string, unknown][] = [];
  if (typeof value === 'string') {
    for (const s of value.split(',')) {
      if (!s) continue;
      const i = s.indexOf('=');
      if (i < 0) throw bad(`missing bool value for ${s.trim()}`);
      pairs.push([s.slice(0, i).trim(), s.slice(i + 1).trim()]);
    }
  } else {
    pairs.push(...Object.entries(value));
  }
  for (const [k, raw] of pairs) {
    const v = typeof raw === 'boolean' ? raw : typeof raw === 'string' && TRUE.has(raw) ? true : typeof raw === 'string' && FALSE.has(raw) ? false : undefined;
    if (v === undefined) throw bad(`invalid value of ${k}=${String(raw)}, err: strconv.ParseBool: parsing ${JSON.stringify(String(raw))}: invalid syntax`);
    if (!known(k)) throw bad(`unrecognized feature gate: ${k}`);
    out[k] = v;
  }
  return out;
}

/** The flag's gates over the config file's (`featureGates: {Name: bool}`) over the defaults; undefined: neither sets one. */
export function resolveFeatureGates(flag: string | undefined, file: unknown): FeatureGates | undefined {
  if (file !== undefined && (typeof file !== 'object' || file === null || Array.isArray(file)))
    throw invalidArgument('ERR_FEATURE_GATE_INVALID', 'featureGates in the config file must be a map of gate names to true/false');
  if (flag === undefined && file === undefined) return undefined;
  const fromFile = file ? parseFeatureGates(file as Record<string, unknown>) : DEFAULT_FEATURE_GATES;
  return flag === undefined ? fromFile : parseFeatureGates(flag, fromFile);
}

/** Node status.declaredFeatures for these gates (given a kubelet server to serve them). */
export function declaredFeatures(g: Readonly<FeatureGates>): string[] {
  return g.ExtendWebSocketsToKubelet ? ['ExtendWebSocketsToKubelet'] : [];
}
