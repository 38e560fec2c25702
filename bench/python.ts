/**
 * The numpy peers (bench/peers/*.py): one JSON object in on stdin, one out on stdout. Node-only (the
 * command hands it to suites through BenchContext.python); a missing python3 or numpy is an error
 * that names itself, which the suite reports as the peer's error.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export function runPythonPeer(script: string, input: unknown): Promise<unknown> {
  const path = fileURLToPath(new URL(`./peers/${script}`, import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [path], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', (error) => reject(new Error(`python3 could not start: ${error.message}`)));
    child.on('close', (code) => {
      if (code !== 0) {
        const last = stderr.trim().split('\n').at(-1) ?? '';
        reject(new Error(`${script} exited with ${code}: ${last}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout));
      } catch {
        reject(new Error(`${script} printed no JSON: ${stdout.slice(0, 200)}`));
      }
    });
    child.stdin.end(JSON.stringify(input));
  });
}
