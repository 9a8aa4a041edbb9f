// Structured logging: one JSON object per line on stderr (or logfmt-ish text
// on a TTY). Every component gets a child logger carrying its own fields.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LogSink {
  write(line: string): void;
}

interface LoggerState {
  level: LogLevel;
  format: 'json' | 'text';
  sink: LogSink;
}

const state: LoggerState = {
  level: (process.env.NODELET_LOG_LEVEL as LogLevel | undefined) ?? 'info',
  format: process.env.NODELET_LOG_FORMAT === 'json' || !process.stderr.isTTY ? 'json' : 'text',
  sink: { write: (line) => process.stderr.write(line) },
};

export function configureLogging(opts: Partial<LoggerState>): void {
  Object.assign(state, opts);
}

function serialize(v: unknown): unknown {
  if (v instanceof Error) {
    const out: Record<string, unknown> = { message: v.message };
    const code = (v as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    return out;
  }
  return v;
}

class StructuredLogger implements Logger {
  constructor(private readonly fields: Record<string, unknown>) {}

  private emit(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (order[level] < order[state.level]) return;
    const all: Record<string, unknown> = { ...this.fields, ...fields };
    for (const k of Object.keys(all)) all[k] = serialize(all[k]);
    if (state.format === 'json') {
      state.sink.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...all }) + '\n');
    } else {
      const kv = Object.entries(all)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}`)
        .join(' ');
      state.sink.write(`${level.toUpperCase().padEnd(5)} ${msg}${kv ? ' ' + kv : ''}\n`);
    }
  }

  debug(msg: string, fields?: Record<string, unknown>) { this.emit('debug', msg, fields); }
  info(msg: string, fields?: Record<string, unknown>) { this.emit('info', msg, fields); }
  warn(msg: string, fields?: Record<string, unknown>) { this.emit('warn', msg, fields); }
  error(msg: string, fields?: Record<string, unknown>) { this.emit('error', msg, fields); }
  child(fields: Record<string, unknown>): Logger { return new StructuredLogger({ ...this.fields, ...fields }); }
}

export const rootLogger: Logger = new StructuredLogger({});
export function getLogger(component: string): Logger {
  return rootLogger.child({ component });
}
