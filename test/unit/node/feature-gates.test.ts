import { describe, expect, it } from 'vitest';
import { declaredFeatures, DEFAULT_FEATURE_GATES, parseFeatureGates, resolveFeatureGates } from '../../../src/node/feature-gates.js';

describe('--feature-gates (component-base featuregate.Set, for the gates nodelet has)', () => {
  it('ExtendWebSocketsToKubelet defaults to true and is declared', () => {
    expect(DEFAULT_FEATURE_GATES).toEqual({ ExtendWebSocketsToKubelet: true });
    expect(declaredFeatures(DEFAULT_FEATURE_GATES)).toEqual(['ExtendWebSocketsToKubelet']);
  });

  it('parses NAME=BOOL lists with Go\'s booleans, spaces trimmed, empty items skipped; false is not declared', () => {
    for (const v of ['false', 'False', 'FALSE', 'f', 'F', '0']) expect(parseFeatureGates(`ExtendWebSocketsToKubelet=${v}`)).toEqual({ ExtendWebSocketsToKubelet: false });
    for (const v of ['true', 'True', 'TRUE', 't', 'T', '1']) expect(parseFeatureGates(`ExtendWebSocketsToKubelet=${v}`, { ExtendWebSocketsToKubelet: false })).toEqual({ ExtendWebSocketsToKubelet: true });
    expect(parseFeatureGates(' ExtendWebSocketsToKubelet = false ,,')).toEqual({ ExtendWebSocketsToKubelet: false });
    expect(parseFeatureGates('')).toEqual({ ExtendWebSocketsToKubelet: true });
    expect(declaredFeatures(parseFeatureGates('ExtendWebSocketsToKubelet=false'))).toEqual([]);
    // the last one wins, as in a map
    expect(parseFeatureGates('ExtendWebSocketsToKubelet=false,ExtendWebSocketsToKubelet=true')).toEqual({ ExtendWebSocketsToKubelet: true });
  });

  it('refuses what kubelet refuses, with its words', () => {
    const err = (v: string) => {
      try {
        parseFeatureGates(v);
      } catch (e) {
        return e as Error & { code?: string };
      }
      throw new Error(`accepted ${v}`);
    };
    expect(err('ExtendWebSocketsToKubelet')).toMatchObject({ code: 'ERR_FEATURE_GATE_INVALID', message: expect.stringContaining('missing bool value for ExtendWebSocketsToKubelet') });
    expect(err('ExtendWebSocketsToKubelet=yes').message).toContain('invalid value of ExtendWebSocketsToKubelet=yes, err: strconv.ParseBool: parsing "yes": invalid syntax');
    expect(err('NoSuchGate=true').message).toContain('unrecognized feature gate: NoSuchGate');
    expect(err('NoSuchGate=true').message).toContain('known gates: ExtendWebSocketsToKubelet');
  });

  it('the flag overrides the config file\'s featureGates map, which overrides the defaults', () => {
    expect(resolveFeatureGates(undefined, undefined)).toBeUndefined();
    expect(resolveFeatureGates(undefined, { ExtendWebSocketsToKubelet: false })).toEqual({ ExtendWebSocketsToKubelet: false });
    expect(resolveFeatureGates('ExtendWebSocketsToKubelet=true', { ExtendWebSocketsToKubelet: false })).toEqual({ ExtendWebSocketsToKubelet: true });
    expect(resolveFeatureGates('ExtendWebSocketsToKubelet=false', undefined)).toEqual({ ExtendWebSocketsToKubelet: false });
    expect(() => resolveFeatureGates(undefined, { ExtendWebSocketsToKubelet: 'maybe' })).toThrow(/invalid value of ExtendWebSocketsToKubelet=maybe/);
    expect(() => resolveFeatureGates(undefined, ['ExtendWebSocketsToKubelet'])).toThrow(/must be a map/);
  });
});
