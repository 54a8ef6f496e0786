import { spawn, type ChildProcess } from 'node:child_process';

export interface SpawnedServer {
  child: ChildProcess;
  /** The URL the server logs once it serves; rejects if the process exits first. */
  url: Promise<string>;
  exit: Promise<number | null>;
  stderr: () => string;
}

/**
 * Starts a server process (stdout ignored, stderr kept) and tracks it in `children`, so the test file can kill
 * whatever is still running when it ends. `detached`: in a process group of its own (as `setsid` starts it), which
 * the test can signal whole with `process.kill(-child.pid)`.
 */
export function spawnServer(command: string, args: string[], env: NodeJS.ProcessEnv, children: ChildProcess[], detached = false): SpawnedServer {
  const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'], detached });
  children.push(child);
  let stderr = '';
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const url = new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /"url":"(http:\/\/[^"]+)"/.exec(stderr);
      if (m) resolve(m[1]);
    });
    void exit.then((code) => reject(new Error(`exited with ${code} before serving:\n${stderr}`)));
  });
  return { child, url, exit, stderr: () => stderr };
}
