import type { ChildService } from './children.js';

/**
 * The services the quickstart spawned, in start order. Each is added right after its spawn, so a
 * stop during its start-up reaches it too.
 */
export class RunningServices {
  readonly #services: { service: ChildService; timeoutMs: number }[] = [];
  /** Stops begun by `add` for services spawned after stopAll began; true when in time. */
  readonly #stopping = new Map<ChildService, Promise<boolean>>();
  #closed = false;

  /** Records a spawned service; after stopAll began, also starts stopping it at once. */
  add(service: ChildService, timeoutMs: number): void {
    this.#services.push({ service, timeoutMs });
    if (this.#closed) this.#stopping.set(service, service.stop(timeoutMs));
  }

  list(): ChildService[] {
    return this.#services.map((entry) => entry.service);
  }

  /**
   * Stops the services in reverse start order (the satellite, Ground Control, then the registry),
   * each with its time limit. Call it again after the start-up ended, for services that were
   * spawned while the first call ran.
   */
  async stopAll(progress: (line: string) => void): Promise<void> {
    this.#closed = true;
    for (let entry = this.#services.pop(); entry !== undefined; entry = this.#services.pop()) {
      const { service, timeoutMs } = entry;
      const stopping = this.#stopping.get(service);
      if (stopping === undefined && !service.running()) continue;
      const inTime = await (stopping ?? service.stop(timeoutMs));
      progress(
        inTime
          ? `stopped ${service.name}`
          : `${service.name} did not stop within ${timeoutMs / 1000} s and was killed; read ${service.logFile}`,
      );
    }
  }
}
