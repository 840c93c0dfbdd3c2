// The server's log: one line per call on stdout. In production (`node build`)
// each line is a JSON object for the log collector; under `vite dev`, a short
// line for people. Callers pass identifiers and outcomes only: never headers,
// cookies, tokens, query strings or form values.
import { format } from 'node:util';
import { dev } from '$app/environment';

export type Level = 'info' | 'warn' | 'error';
export type Fields = Record<string, string | number | boolean | null | undefined>;

function write(level: Level, event: string, fields: Fields = {}): void {
	const time = new Date();
	const line = dev
		? readable(time, level, event, fields)
		: JSON.stringify({ time: time.toISOString(), level, event, ...fields });
	print(line);
}

// console.log writes a line to stdout; vitest can also tell which test logged it.
let print = (line: string) => console.log(line);

/**
 * In production, what others write to the console (adapter-node's "Listening
 * on", a library's warning) becomes a JSON line too: one format per stream.
 */
export function routeConsoleToLog(): void {
	const original = console.log.bind(console);
	print = (line) => original(line);
	const levels = { log: 'info', info: 'info', warn: 'warn', error: 'error' } as const;
	for (const [method, level] of Object.entries(levels)) {
		console[method as keyof typeof levels] = (...args: unknown[]) =>
			write(level, 'console', { message: format(...args) });
	}
}

export const log = {
	info: (event: string, fields?: Fields) => write('info', event, fields),
	warn: (event: string, fields?: Fields) => write('warn', event, fields),
	error: (event: string, fields?: Fields) => write('error', event, fields)
};

/**
 * The path to log for a request: its URL path, never the query string. On a
 * route with parameters, the route's pattern instead (`/reset/[uid]/[token]`),
 * since a parameter can be a secret: a password-reset token, a verification key.
 */
export function loggedPath(event: {
	url: URL;
	route: { id: string | null };
	params: Partial<Record<string, string>>;
}): string {
	if (event.route.id && Object.keys(event.params).length > 0) {
		return event.route.id.replace(/\/\([^/]+\)/g, '') || '/';
	}
	return event.url.pathname;
}

function readable(time: Date, level: Level, event: string, fields: Fields): string {
	const { stack, ...rest } = fields;
	const words = [time.toTimeString().slice(0, 8), level.toUpperCase().padEnd(5)];
	if (event === 'request') {
		const { method, path, status, duration_ms, ...others } = rest;
		words.push(`${method} ${path} ${status} ${duration_ms} ms`, ...pairs(others));
	} else {
		words.push(event, ...pairs(rest));
	}
	return words.join(' ') + (stack ? `\n${stack}` : '');
}

function pairs(fields: Fields): string[] {
	return Object.entries(fields)
		.filter(([, value]) => value !== undefined && value !== null)
		.map(([key, value]) => `${key}=${typeof value === 'string' ? JSON.stringify(value) : value}`);
}
