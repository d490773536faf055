export const LogLevel = {
  Debug: 10,
  Info: 20,
  Warn: 30,
  Error: 40,
  Silent: 100,
} as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];

export type LogLevelName = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

const levelByName: Record<LogLevelName, LogLevel> = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warn: LogLevel.Warn,
  error: LogLevel.Error,
  silent: LogLevel.Silent,
};

export function isLogLevelName(s: string): s is LogLevelName {
  return s in levelByName;
}

/** Lines of `2026-01-01T00:00:00.000Z [info] text` on stderr, filtered by level. */
export function createLogger(
  level: LogLevelName = 'info',
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const min = levelByName[level];
  const emit = (lvl: LogLevel, name: string, message: string): void => {
    if (lvl < min) return;
    write(`${new Date().toISOString()} [${name}] ${message}\n`);
  };
  return {
    debug: (m) => emit(LogLevel.Debug, 'debug', m),
    info: (m) => emit(LogLevel.Info, 'info', m),
    warn: (m) => emit(LogLevel.Warn, 'warn', m),
    error: (m) => emit(LogLevel.Error, 'error', m),
  };
}
