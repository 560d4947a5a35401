import { GcnError } from '@gcn/core'
import { runBootstrap } from './bootstrap.js'
import { runDevnet } from './devnet.js'
import { runDistributor } from './distributor.js'
import { runModel } from './model.js'
import { runRegistry } from './registry.js'
import { runSupplier } from './supplier.js'

interface Command {
  summary: string
  run(argv: string[]): Promise<number>
}

const commands: Record<string, Command> = {
  bootstrap: { summary: 'run a bootstrap node (DHT server + gossip relay)', run: runBootstrap },
  supplier: { summary: 'run a supplier peer that serves a local model', run: runSupplier },
  distributor: { summary: 'run a distributor with the OpenAI-compatible gateway', run: runDistributor },
  registry: { summary: 'run a registry peer (receipts ledger, settlement)', run: runRegistry },
  devnet: { summary: 'start a whole local network on 127.0.0.1', run: runDevnet },
  model: { summary: 'write a deterministic GGUF test model (model make), encrypt one (model encrypt)', run: runModel }
}

export const mainHelp = `Usage: gcn <command> [options]

gcn, the Game Compute Network: decentralized AI inference for games.

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(13)}${c.summary}`)
  .join('\n')}

Run \`gcn <command> --help\` for a command's options. Every option can also be
set by an environment variable (GCN_<OPTION>) or a JSON file (--config FILE).
`

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp)
    return name === undefined ? 2 : 0
  }
  const command = commands[name]
  if (command === undefined) {
    process.stderr.write(`gcn: unknown command ${JSON.stringify(name)}\n\n${mainHelp}`)
    return 2
  }
  try {
    return await command.run(rest)
  } catch (err) {
    if (err instanceof GcnError) {
      process.stderr.write(`gcn ${name}: ${err.message}${err.hint === undefined ? '' : `\n  hint: ${err.hint}`}\n`)
      return 1
    }
    throw err
  }
}
