/**
 * One structured logger, injected into every service. Lines are JSON objects
 * (`ts`, `level`, `component`, `msg`, fields). Callers pass identifiers and
 * numbers only: prompts, outputs and keys are never logged, and the field
 * names listed in REDACTED_FIELDS are replaced if they slip through.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

export type LogFields = Record<string, unknown>

export interface Logger {
  readonly component: string
  debug(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
  /** A logger for a sub-component, e.g. `gcn:supplier:runtime`. */
  child(component: string): Logger
}

export interface LoggerInit {
  component?: string
  level?: LogLevel
  /** Where each line goes; defaults to stderr. */
  sink?: (line: string) => void
  /** `json` (default) or `pretty` for humans at a terminal. */
  format?: 'json' | 'pretty'
}

const LEVEL_ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }
export const LOG_LEVELS = Object.keys(LEVEL_ORDER) as LogLevel[]

/** Field names whose values never reach a log line. */
export const REDACTED_FIELDS = new Set([
  'prompt',
  'output',
  'content',
  'messages',
  'text',
  'key',
  'privateKey',
  'secret',
  'nonce',
  'apiKey'
])

function serialise(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code
    return { name: value.name, message: value.message, ...(code === undefined ? {} : { code }) }
  }
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`
  return value
}

class StructuredLogger implements Logger {
  readonly component: string
  private readonly threshold: number

  constructor(
    private readonly init: Required<Omit<LoggerInit, 'component'>>,
    component: string
  ) {
    this.component = component
    this.threshold = LEVEL_ORDER[init.level]
  }

  private write(level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void {
    if (LEVEL_ORDER[level] < this.threshold) return
    const record: LogFields = { ts: new Date().toISOString(), level, component: this.component, msg }
    if (fields !== undefined) {
      for (const [k, v] of Object.entries(fields)) {
        record[k] = REDACTED_FIELDS.has(k) ? '[redacted]' : serialise(v)
      }
    }
    if (this.init.format === 'pretty') {
      const { ts, level: l, component, msg: m, ...rest } = record
      const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : ''
      this.init.sink(`${ts} ${String(l).toUpperCase().padEnd(5)} ${component} ${m}${extra}`)
    } else {
      this.init.sink(JSON.stringify(record))
    }
  }

  debug(msg: string, fields?: LogFields): void {
    this.write('debug', msg, fields)
  }
  info(msg: string, fields?: LogFields): void {
    this.write('info', msg, fields)
  }
  warn(msg: string, fields?: LogFields): void {
    this.write('warn', msg, fields)
  }
  error(msg: string, fields?: LogFields): void {
    this.write('error', msg, fields)
  }
  child(component: string): Logger {
    return new StructuredLogger(this.init, `${this.component}:${component}`)
  }
}

export function createLogger(init: LoggerInit = {}): Logger {
  return new StructuredLogger(
    {
      level: init.level ?? 'info',
      sink: init.sink ?? ((line: string) => process.stderr.write(`${line}\n`)),
      format: init.format ?? 'json'
    },
    init.component ?? 'gcn'
  )
}

/** A logger that drops everything (tests, embedding). */
export const silentLogger: Logger = createLogger({ level: 'silent', sink: () => {} })
