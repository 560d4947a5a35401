#!/usr/bin/env bash
# Regenerates packages/core/src/pb/gcn.ts from gcn.proto with protons, then
# routes bigint uint64 writes through writeUint64 (see src/pb/uint64.ts).
set -euo pipefail
dir="$(cd "$(dirname "$0")/../packages/core/src/pb" && pwd)"
cd "$dir"
npx protons "$dir/gcn.proto"
sed -i 's/w\.uint64(obj\.\([A-Za-z0-9]*\))/writeUint64(w, obj.\1)/g' gcn.ts
sed -i "1a import { writeUint64 } from './uint64.js'" gcn.ts
