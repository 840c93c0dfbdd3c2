import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cookies } from '@sveltejs/kit';
import { createApiClient } from '$lib/server/api';
import { ada, json, startServer, type TestServer } from '$lib/testing/server';

// Every page's and layout's server load, found on disk: a new route is covered
// without being listed here.
type Load = (event: never) => unknown;
const modules = import.meta.glob<{ load?: Load }>('./**/+{page,layout}.server.ts', {
	eager: true
});

// One-time links put their secret in the path: it may only go to the API in a form's POST.
const params = { key: 'one-time-key', uid: 'MQ', token: 'one-time-token' };
const SECRETS = [params.key, params.token];

let server: TestServer;

beforeAll(async () => {
	server = await startServer({
		'GET /api/auth/me/': (_, res) => json(res, 200, { ...ada, is_staff: true }),
		'GET /api/health/': (_, res) => json(res, 200, { status: 'ok' }),
		'GET /api/users/?page=1': (_, res) =>
			json(res, 200, { count: 0, next: null, previous: null, results: [] })
	});
});

afterAll(() => server.close());

/** A GET of `route` as SvelteKit would run its server load, anonymous or logged in. */
async function open(route: string, load: Load, loggedIn: boolean): Promise<void> {
	const path = route
		.replace(/^\.|\/\+(page|layout)\.server\.ts$/g, '')
		.replace(/\[(\w+)\]/g, (_, name: string) => params[name as keyof typeof params]);
	const url = new URL(`http://localhost:3000${path || '/'}?page=1`);
	const cookies = { get: () => undefined, set: () => {}, delete: () => {} } as unknown as Cookies;
	const user = loggedIn ? { ...ada, is_staff: true } : null;
	const event = {
		url,
		params,
		cookies,
		request: new Request(url),
		route: { id: route },
		locals: {
			api: createApiClient({ baseUrl: server.url, token: loggedIn ? 'good' : null }),
			user,
			apiUnavailable: false
		},
		parent: async () => ({}),
		depends: () => {},
		untrack: <T>(fn: () => T) => fn(),
		setHeaders: () => {},
		getClientAddress: () => '203.0.113.7'
	};
	try {
		await load(event as never);
	} catch {
		// A redirect or an error page: what it sent the API is what counts.
	}
}

describe('opening a page (GET)', () => {
	it('finds the routes, one-time links among them', () => {
		expect(Object.keys(modules)).toEqual(
			expect.arrayContaining([
				'./+layout.server.ts',
				'./+page.server.ts',
				'./login/+page.server.ts',
				'./verify/[key]/+page.server.ts',
				'./reset/[uid]/[token]/+page.server.ts'
			])
		);
	});

	it('changes nothing through the API, and never sends it a link`s secret', async () => {
		for (const [route, module] of Object.entries(modules)) {
			if (!module.load) continue;
			for (const loggedIn of [false, true]) {
				const before = server.requests.length;
				await open(route, module.load, loggedIn);
				for (const request of server.requests.slice(before)) {
					const seen = `${route} (${loggedIn ? 'logged in' : 'anonymous'}): ${request.method} ${request.url}`;
					expect(request.method, seen).toBe('GET');
					expect(
						SECRETS.filter((secret) => `${request.url} ${request.body}`.includes(secret)),
						seen
					).toEqual([]);
				}
			}
		}
		expect(server.requests.length, 'the loads that read the API were run').toBeGreaterThan(0);
	});
});
