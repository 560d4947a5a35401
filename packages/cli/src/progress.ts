/** A one-line progress bar on stderr when it is a terminal; silent otherwise (logs stay clean). */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr) {
  const tty = stream.isTTY === true
  let last = -1
  return {
    update(done: number, total: number): void {
      if (!tty || total <= 0) return
      const pct = Math.min(100, Math.max(0, Math.floor((done / total) * 100)))
      if (pct === last) return
      last = pct
      const width = 30
      const filled = Math.round((pct / 100) * width)
      stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}%`)
    },
    /** Ends the line, if anything was drawn. */
    done(): void {
      if (tty && last !== -1) stream.write('\n')
      last = -1
    }
  }
}
