import { describe, expect, it } from 'vitest';
import { decodeHealthResponse, encodeHealthRequest } from '../../../src/probe/grpc.js';

describe('gRPC health codec', () => {
  it('gRPC health frames', () => {
    expect(encodeHealthRequest('')).toEqual(Buffer.from([0, 0, 0, 0, 0]));
    expect(encodeHealthRequest('svc')).toEqual(Buffer.from([0, 0, 0, 0, 5, 0x0a, 3, 0x73, 0x76, 0x63]));
    expect(decodeHealthResponse(Buffer.from([0, 0, 0, 0, 2, 0x08, 1]))).toBe(1);
    expect(decodeHealthResponse(Buffer.from([0, 0, 0, 0, 0]))).toBe(0);
  });
});
