/// <reference types="node" />
/// <reference types="mocha" />
import { existsSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'
import { build, type Plugin } from 'esbuild'
import ts from 'typescript'

/** The package root, whether this spec runs from test/ (tsx) or dist/test/ (compiled). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir)
  return dir
}

const sdkDir = packageRoot()
const entry = join(sdkDir, 'src', 'index.ts')

const builtins = new Set(builtinModules.flatMap(name => [name, `node:${name}`]))

/** Fails the build on any import of a Node built-in, bare (`fs`) or prefixed (`node:fs`, `node:test`). */
const noNodeBuiltins: Plugin = {
  name: 'no-node-builtins',
  setup(b) {
    b.onResolve({ filter: /.*/ }, args => {
      const root = args.path.split('/')[0]!
      if (args.path.startsWith('node:') || builtins.has(args.path) || builtins.has(root)) {
        return { errors: [{ text: `Node built-in "${args.path}" imported from ${args.importer}` }] }
      }
      return undefined
    })
  }
}

describe('browser bundle', () => {
  it('bundles src/index.ts for the browser with no Node built-ins, require or process', async () => {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      metafile: true,
      logLevel: 'silent',
      plugins: [noNodeBuiltins]
    })
    expect(result.errors).to.deep.equal([])
    expect(result.warnings).to.deep.equal([])
    const inputs = Object.keys(result.metafile.inputs).map(p => relative(sdkDir, resolve(process.cwd(), p)))
    expect(inputs).to.include('src/index.ts')
    for (const input of inputs) {
      expect(input, 'every bundled file is SDK source').to.match(/^src\/[\w-]+\.ts$/)
      expect(input).to.not.match(/^node:|node_modules/)
    }
    for (const input of Object.values(result.metafile.inputs)) {
      for (const imported of input.imports) expect(imported.external ?? false, imported.path).to.equal(false)
    }
    expect(result.outputFiles).to.have.length(1)
    const code = result.outputFiles[0]!.text
    expect(code).to.not.include('require(')
    expect(code).to.not.include('process.')
    // Node is reached only by run-time feature detection (node-transport.ts), which finds nothing in a browser.
    expect(code.match(/globalThis\.process\b/g) ?? []).to.have.length(1)
    expect(code).to.match(/getBuiltinModule\?\.\("node:http"\)|getBuiltinModule\?\.\(id\)/)
    expect(code).to.not.match(/\bBuffer\b/)
    expect(code).to.include('GcnClient')
  })

  it('the plugin does reject Node built-ins (control)', async () => {
    let error: unknown
    try {
      await build({
        stdin: { contents: "import { readFile } from 'node:fs'; import path from 'path'; console.log(readFile, path)", loader: 'ts' },
        bundle: true,
        platform: 'browser',
        format: 'esm',
        write: false,
        logLevel: 'silent',
        plugins: [noNodeBuiltins]
      })
    } catch (e) {
      error = e
    }
    const texts = ((error as { errors?: { text: string }[] })?.errors ?? []).map(e => e.text)
    expect(texts).to.have.length(2)
    expect(texts.join('\n')).to.include('node:fs').and.include('"path"')
  })

  it('src type-checks with only ES2022 and DOM types (no @types/node)', () => {
    const configPath = join(sdkDir, 'tsconfig.json')
    const parsed = ts.getParsedCommandLineOfConfigFile(configPath, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })
    expect(parsed, 'tsconfig parsed').to.not.equal(undefined)
    const rootNames = parsed!.fileNames.filter(f => relative(sdkDir, f).startsWith('src'))
    expect(rootNames.map(f => relative(sdkDir, f))).to.include('src/index.ts')
    const options: ts.CompilerOptions = {
      ...parsed!.options,
      types: [],
      lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
      noEmit: true,
      composite: false,
      incremental: false,
      declaration: false,
      declarationMap: false
    }
    const program = ts.createProgram({ rootNames, options })
    const diagnostics = ts.getPreEmitDiagnostics(program).map(d => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    expect(diagnostics).to.deep.equal([])
    const nodeTypes = program.getSourceFiles().filter(f => f.fileName.includes('@types/node'))
    expect(nodeTypes.map(f => f.fileName)).to.deep.equal([])
  })
})
