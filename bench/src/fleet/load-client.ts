// The bench's side of the load generator: spawns `node bench/dist/fleet-load.js`, writes
// commands to its stdin and reads its JSON-line replies from stdout.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { replySchema, type Command, type Reply } from './messages.js';
import { BenchError } from './satellite.js';

const LOAD_ENTRY = join(import.meta.dirname, '..', 'fleet-load.js');
/** Time the load generator gets to exit after `exit` before it is killed, in milliseconds. */
const EXIT_TIMEOUT_MS = 10_000;
/** Bytes of the generator's stderr kept for error messages. */
const STDERR_TAIL_BYTES = 16_384;

type Waiting = { type: Reply['type']; resolve: (reply: Reply) => void; reject: (e: Error) => void };

export class LoadGenerator {
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly waiting: Waiting[] = [];
  private stderrTail = '';
  private readonly exited: Promise<void>;

  constructor(nodeArgs: string[] = []) {
    this.child = spawn(process.execPath, [...nodeArgs, LOAD_ENTRY], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-STDERR_TAIL_BYTES);
    });
    createInterface({ input: this.child.stdout }).on('line', (line) => this.onLine(line));
    // A bench that crashes must not leave the generator running.
    const killOnExit = (): void => void this.child.kill('SIGKILL');
    process.once('exit', killOnExit);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        process.off('exit', killOnExit);
        const error = new BenchError(
          `load generator exited (code ${code}, signal ${signal}); its stderr:\n${this.stderrTail}`,
        );
        for (const entry of this.waiting.splice(0)) entry.reject(error);
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Sends a command without waiting for a reply. */
  send(command: Command): void {
    this.child.stdin.write(`${JSON.stringify(command)}\n`);
  }

  /** Resolves with the next reply of `type`; a `failed` reply rejects every waiter. */
  next<T extends Reply['type']>(type: T): Promise<Extract<Reply, { type: T }>> {
    return new Promise((resolve, reject) => {
      this.waiting.push({
        type,
        resolve: (reply) => resolve(reply as Extract<Reply, { type: T }>),
        reject,
      });
    });
  }

  /** Sends a command and resolves with its reply of `type`. */
  async request<T extends Reply['type']>(
    command: Command,
    type: T,
  ): Promise<Extract<Reply, { type: T }>> {
    const reply = this.next(type);
    this.send(command);
    return reply;
  }

  /** Asks the generator to exit, and kills it by PID when it does not in time. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.send({ type: 'exit' });
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  private onLine(line: string): void {
    let reply: Reply;
    try {
      reply = replySchema.parse(JSON.parse(line));
    } catch {
      this.stderrTail += `\n(unparsed stdout line) ${line.slice(0, 500)}`;
      return;
    }
    if (reply.type === 'failed') {
      const error = new BenchError(`load generator failed: ${reply.message}`);
      for (const entry of this.waiting.splice(0)) entry.reject(error);
      return;
    }
    const index = this.waiting.findIndex((entry) => entry.type === reply.type);
    if (index >= 0) this.waiting.splice(index, 1)[0]?.resolve(reply);
  }
}
