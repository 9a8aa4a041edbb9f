// Regenerate native/protocol.h from src/runtime/shim/protocol.ts (via dist/).
// Usage: npm run build:ts && node native/gen-protocol.mjs
import { writeFileSync } from 'node:fs';
import { renderProtocolHeader } from '../dist/runtime/shim/protocol.js';
writeFileSync(new URL('./protocol.h', import.meta.url), renderProtocolHeader());
