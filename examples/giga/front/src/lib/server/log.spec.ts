import { afterEach, describe, expect, it, vi } from 'vitest';

// Under `vite dev`: lines for people. (hooks.server.spec.ts covers the JSON lines.)
vi.mock('$app/environment', () => ({ dev: true, building: false, version: 'test' }));

const { log, loggedPath } = await import('./log');

function written(fn: () => void): string {
	const lines: string[] = [];
	vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
	fn();
	return lines.join('\n');
}

afterEach(() => vi.restoreAllMocks());

describe('log, in development', () => {
	it('writes a short line per request', () => {
		const line = written(() =>
			log.warn('request', {
				request_id: 'r-1',
				method: 'GET',
				path: '/users',
				status: 404,
				duration_ms: 3.2,
				user_id: null
			})
		);
		expect(line).toMatch(/^\d\d:\d\d:\d\d WARN {2}GET \/users 404 3\.2 ms request_id="r-1"$/);
	});

	it('writes other events with their fields, and a stack under the line', () => {
		const line = written(() =>
			log.error('unexpected_error', { request_id: 'r-2', error: 'Error: boom', stack: 'at x' })
		);
		expect(line).toMatch(
			/^\d\d:\d\d:\d\d ERROR unexpected_error request_id="r-2" error="Error: boom"\nat x$/
		);
		expect(written(() => log.info('started', { port: 9464 }))).toMatch(
			/INFO {2}started port=9464$/
		);
	});
});

describe('loggedPath', () => {
	const at = (href: string, id: string | null, params: Record<string, string> = {}) =>
		loggedPath({ url: new URL(href), route: { id }, params });

	it('is the URL path, never the query string', () => {
		expect(at('http://localhost/login?next=%2Fme&token=x', '/login')).toBe('/login');
		expect(at('http://localhost/no/such?page=1', null)).toBe('/no/such');
	});

	it("is the route's pattern when the route has parameters, which can be secrets", () => {
		expect(at('http://localhost/verify/k3y', '/verify/[key]', { key: 'k3y' })).toBe(
			'/verify/[key]'
		);
		expect(at('http://localhost/a/b', '/(app)/a/[b]', { b: 'b' })).toBe('/a/[b]');
	});
});
