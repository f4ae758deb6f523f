import { execFileSync } from 'node:child_process'
import path from 'node:path'

/** Builds (or reuses, by stamp) the fixture stores with real podman and skopeo. */
export default function setup(): void {
  execFileSync('bash', [path.join(__dirname, 'fixtures', 'build-stores.sh')], { stdio: 'inherit' })
}
