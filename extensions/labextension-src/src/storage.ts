/** Web storage that keeps working in a frame whose browser blocks cookies. */

/** A Storage kept in this page's memory, for when the browser refuses web storage. */
export function memoryStorage(): Storage {
  const items = new Map<string, string>();
  return {
    get length(): number {
      return items.size;
    },
    key(index: number): string | null {
      const key = Array.from(items.keys())[index];
      return key === undefined ? null : key;
    },
    getItem(key: string): string | null {
      const value = items.get(String(key));
      return value === undefined ? null : value;
    },
    setItem(key: string, value: string): void {
      items.set(String(key), String(value));
    },
    removeItem(key: string): void {
      items.delete(String(key));
    },
    clear(): void {
      items.clear();
    }
  };
}

/**
 * A browser that blocks cookies also blocks localStorage and sessionStorage in a frame:
 * reading window.localStorage throws a SecurityError. JupyterLab's window resolver
 * needs localStorage, and when it throws, JupyterLab reloads itself into a new
 * workspace, again and again. This runs when JupyterLab evaluates the extension, before
 * any plugin is activated, so replacing the refused storage with one in memory keeps
 * JupyterLab working; nothing is lost that the server does not keep (workspaces and
 * settings are saved there).
 */
export function keepStorageUsable(): void {
  for (const name of ['localStorage', 'sessionStorage'] as const) {
    try {
      const storage = window[name];
      const probe = '__learnhub_probe__';
      storage.setItem(probe, probe);
      storage.removeItem(probe);
    } catch (e) {
      Object.defineProperty(window, name, {
        value: memoryStorage(),
        configurable: true,
        enumerable: true
      });
    }
  }
}
