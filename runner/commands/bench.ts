/**
 * `bench`: a repository-only command. Its code, suites and peers (devDependencies) live in bench/,
 * which the npm package does not ship; it is loaded here, when the command is asked for, so the
 * product imports nothing of bench/. In the installed package this import fails and runner/cli.ts
 * says where the bench runs.
 */
export const { usage, main } = await import('../../bench/command.ts');
