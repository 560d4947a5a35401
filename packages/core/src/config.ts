import { readFileSync } from 'node:fs'
import { ConfigError } from './errors.js'

/**
 * Config loading for every role: a JSON file (`--config FILE` or
 * GCN_CONFIG), environment variables (GCN_<KEY>) and command-line flags, in
 * that order of increasing precedence, validated against one schema that also
 * produces the `--help` text. Every problem is a ConfigError that names the
 * option and where the bad value came from.
 */
export type OptionType = 'string' | 'integer' | 'number' | 'boolean' | 'string[]'

interface TypeMap {
  string: string
  integer: number
  number: number
  boolean: boolean
  'string[]': string[]
}

export interface OptionSpec<T extends OptionType = OptionType> {
  type: T
  description: string
  default?: TypeMap[T]
  /** Placeholder in help, e.g. MULTIADDR. */
  valueName?: string
  /** Environment variable; defaults to GCN_<UPPER_SNAKE_KEY>. */
  env?: string
  /** Long flag without dashes; defaults to the kebab-case key. */
  flag?: string
  min?: number
  max?: number
  choices?: readonly string[]
  required?: boolean
  /** Returns an error message, or undefined when valid. */
  validate?: (value: TypeMap[T]) => string | undefined
}

/** Any one option: a union so each spec keeps its own value type. */
export type AnyOptionSpec = { [T in OptionType]: OptionSpec<T> }[OptionType]
export type ConfigSchema = Record<string, AnyOptionSpec>

export type ConfigValues<S extends ConfigSchema> = {
  [K in keyof S]: S[K] extends { required: true } | { default: unknown } ? TypeMap[S[K]['type']] : TypeMap[S[K]['type']] | undefined
}

export interface LoadConfigOptions {
  argv?: readonly string[]
  env?: Record<string, string | undefined>
  /** Allow positional arguments (otherwise they are an error). */
  positionals?: boolean
}

export interface LoadedConfig<S extends ConfigSchema> {
  values: ConfigValues<S>
  positionals: string[]
  /** Where each value came from: default, file, env or flag. */
  sources: Record<keyof S, 'default' | 'file' | 'env' | 'flag' | 'unset'>
  help: boolean
}

const kebab = (key: string): string => key.replace(/[A-Z]/g, c => `-${c.toLowerCase()}`)
const upperSnake = (key: string): string => key.replace(/[A-Z]/g, c => `_${c}`).toUpperCase()

export function envName(key: string, spec: AnyOptionSpec): string {
  return spec.env ?? `GCN_${upperSnake(key)}`
}
export function flagName(key: string, spec: AnyOptionSpec): string {
  return spec.flag ?? kebab(key)
}

function coerce(key: string, spec: AnyOptionSpec, raw: unknown, origin: string): unknown {
  const where = `${key} (from ${origin})`
  switch (spec.type) {
    case 'string':
      if (typeof raw !== 'string') throw new ConfigError(`${where} must be a string`)
      return raw
    case 'integer':
    case 'number': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN
      if (!Number.isFinite(n)) throw new ConfigError(`${where} must be a number, got ${JSON.stringify(raw)}`)
      if (spec.type === 'integer' && !Number.isSafeInteger(n)) throw new ConfigError(`${where} must be an integer, got ${n}`)
      return n
    }
    case 'boolean':
      if (typeof raw === 'boolean') return raw
      if (raw === 'true' || raw === '1' || raw === 'yes') return true
      if (raw === 'false' || raw === '0' || raw === 'no') return false
      throw new ConfigError(`${where} must be true or false, got ${JSON.stringify(raw)}`)
    case 'string[]':
      if (Array.isArray(raw) && raw.every(v => typeof v === 'string')) return raw
      if (typeof raw === 'string') {
        return raw
          .split(',')
          .map(s => s.trim())
          .filter(s => s !== '')
      }
      throw new ConfigError(`${where} must be a list of strings`)
  }
}

function check(key: string, spec: AnyOptionSpec, value: unknown, origin: string): void {
  const where = `${key} (from ${origin})`
  if (typeof value === 'number') {
    if (spec.min !== undefined && value < spec.min) throw new ConfigError(`${where} must be >= ${spec.min}, got ${value}`)
    if (spec.max !== undefined && value > spec.max) throw new ConfigError(`${where} must be <= ${spec.max}, got ${value}`)
  }
  if (spec.choices !== undefined && typeof value === 'string' && !spec.choices.includes(value)) {
    throw new ConfigError(`${where} must be one of ${spec.choices.join(', ')}, got ${JSON.stringify(value)}`)
  }
  const problem = spec.validate?.(value as never)
  if (problem !== undefined) throw new ConfigError(`${where}: ${problem}`)
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}`, { cause: err, hint: 'check the path given to --config / GCN_CONFIG' })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON`, { cause: err })
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must hold a JSON object`)
  }
  return parsed as Record<string, unknown>
}

/** Load and validate options for one command. `--help`/`-h` sets `help` instead of failing on missing required options. */
export function loadConfig<S extends ConfigSchema>(schema: S, options: LoadConfigOptions = {}): LoadedConfig<S> {
  const argv = options.argv ?? process.argv.slice(2)
  const env = options.env ?? process.env
  const byFlag = new Map<string, string>()
  for (const [key, spec] of Object.entries(schema)) byFlag.set(flagName(key, spec), key)

  const flagValues = new Map<string, unknown>()
  const positionals: string[] = []
  let configPath = env.GCN_CONFIG
  let help = false

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--help' || arg === '-h') {
      help = true
      continue
    }
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('--')) {
      if (options.positionals !== true) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}`, { hint: 'see --help' })
      positionals.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    let name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
    let inline: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1)
    if (name === 'config') {
      const value = inline ?? argv[++i]
      if (value === undefined) throw new ConfigError('--config needs a file path')
      configPath = value
      continue
    }
    let negated = false
    if (!byFlag.has(name) && name.startsWith('no-') && byFlag.has(name.slice(3))) {
      negated = true
      name = name.slice(3)
    }
    const key = byFlag.get(name)
    if (key === undefined) throw new ConfigError(`unknown option --${name}`, { hint: 'see --help for the options this command takes' })
    const spec = schema[key]!
    if (spec.type === 'boolean') {
      if (negated) inline = 'false'
      flagValues.set(key, coerce(key, spec, inline ?? 'true', `--${name}`))
      continue
    }
    const value = inline ?? argv[++i]
    if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new ConfigError(`--${name} needs a value`)
    if (spec.type === 'string[]') {
      const previous = (flagValues.get(key) as string[] | undefined) ?? []
      flagValues.set(key, [...previous, ...(coerce(key, spec, value, `--${name}`) as string[])])
    } else {
      flagValues.set(key, coerce(key, spec, value, `--${name}`))
    }
  }

  const file = configPath === undefined || configPath === '' ? {} : readConfigFile(configPath)
  for (const k of Object.keys(file)) {
    if (!(k in schema))
      throw new ConfigError(`unknown key ${JSON.stringify(k)} in config file ${configPath}`, {
        hint: `known keys: ${Object.keys(schema).join(', ')}`
      })
  }

  const values: Record<string, unknown> = {}
  const sources: Record<string, LoadedConfig<S>['sources'][keyof S]> = {}
  for (const [key, spec] of Object.entries(schema)) {
    const envKey = envName(key, spec)
    let value: unknown
    let source: LoadedConfig<S>['sources'][keyof S] = 'unset'
    if (flagValues.has(key)) {
      value = flagValues.get(key)
      source = 'flag'
    } else if (env[envKey] !== undefined && env[envKey] !== '') {
      value = coerce(key, spec, env[envKey], `env ${envKey}`)
      source = 'env'
    } else if (key in file) {
      value = coerce(key, spec, file[key], `config file ${configPath}`)
      source = 'file'
    } else if (spec.default !== undefined) {
      value = spec.default
      source = 'default'
    }
    if (value === undefined) {
      if (spec.required === true && !help) {
        throw new ConfigError(`missing required option ${key}`, { hint: `pass --${flagName(key, spec)} or set ${envKey}` })
      }
    } else {
      check(key, spec, value, source === 'flag' ? `--${flagName(key, spec)}` : source === 'env' ? `env ${envKey}` : source)
    }
    values[key] = value
    sources[key] = source
  }
  return { values: values as ConfigValues<S>, positionals, sources: sources as LoadedConfig<S>['sources'], help }
}

/** Help text listing every flag with its env var and default. */
export function formatHelp(usage: string, summary: string, schema: ConfigSchema): string {
  const rows: Array<[string, string]> = [['--config FILE', 'JSON config file (env GCN_CONFIG); flags > env > file > defaults']]
  for (const [key, spec] of Object.entries(schema)) {
    const flag = `--${flagName(key, spec)}${spec.type === 'boolean' ? '' : ` ${spec.valueName ?? spec.type.toUpperCase().replace('[]', '')}`}`
    const extra = [
      spec.type === 'string[]' ? 'repeatable or comma-separated' : undefined,
      spec.choices !== undefined ? `one of ${spec.choices.join('|')}` : undefined,
      `env ${envName(key, spec)}`,
      spec.default !== undefined ? `default ${JSON.stringify(spec.default)}` : spec.required === true ? 'required' : undefined
    ].filter(Boolean)
    rows.push([flag, `${spec.description} (${extra.join('; ')})`])
  }
  rows.push(['-h, --help', 'show this help'])
  const width = Math.min(34, Math.max(...rows.map(r => r[0].length)) + 2)
  const lines = rows.map(([f, d]) => `  ${f.padEnd(width)}${f.length >= width ? `\n  ${''.padEnd(width)}` : ''}${d}`)
  return `Usage: ${usage}\n\n${summary}\n\nOptions:\n${lines.join('\n')}\n`
}
