import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiClient } from '$lib/server/api';
import { UNAVAILABLE_MESSAGE } from '$lib/server/forms';
import { closedPort, json, startServer, type TestServer } from '$lib/testing/server';
import * as route from './+page.server';

const USED = 'This verification link is invalid, already used or expired. Ask for a new one.';
const THROTTLED = 'Request was throttled. Expected available in 60 seconds.';
// The API's answer to each key; any other key is used or expired.
const ANSWERS: Record<string, [number, object]> = {
	'good:key': [200, { detail: 'Your email address ada@example.com is verified.' }],
	'busy:key': [429, { detail: THROTTLED }]
};
const REFUSED: [number, object] = [400, { non_field_errors: [USED] }];
let server: TestServer;

beforeAll(async () => {
	server = await startServer({
		'POST /api/auth/email/verify/': (req, res) =>
			json(res, ...(ANSWERS[JSON.parse(req.body).key] ?? REFUSED))
	});
});

afterAll(() => server.close());

/** The form's POST, as SvelteKit runs the action: what it returns, or the ActionFailure. */
const confirm = (key: string, apiUrl = server.url) =>
	route.actions.default({
		params: { key },
		url: new URL(`http://localhost:3000/verify/${key}`),
		request: new Request(`http://localhost:3000/verify/${key}`, { method: 'POST' }),
		locals: { api: createApiClient({ baseUrl: apiUrl }), user: null, apiUnavailable: false }
	} as never);

describe('verify page', () => {
	it('verifies nothing when the link is opened: there is no load, only the form action', () => {
		// Mail scanners and link previews GET the link; only the visitor's POST may spend it.
		expect(Object.keys(route)).toEqual(['actions']);
		expect(Object.keys(route.actions)).toEqual(['default']);
	});

	it("sends the link's key to the API on the form's POST and shows its answer", async () => {
		const before = server.requests.length;
		expect(await confirm('good:key')).toEqual({
			verified: true,
			message: 'Your email address ada@example.com is verified.'
		});
		expect(server.requests.slice(before).map((r) => [r.method, r.url, JSON.parse(r.body)])).toEqual(
			[['POST', '/api/auth/email/verify/', { key: 'good:key' }]]
		);
	});

	it('shows why a used or expired link failed, and offers a new link', async () => {
		expect(await confirm('used:key')).toMatchObject({
			status: 400,
			data: { verified: false, message: USED, retry: false }
		});
	});

	it('lets the visitor try again when the API is busy or does not answer', async () => {
		expect(await confirm('busy:key')).toMatchObject({
			status: 429,
			data: { verified: false, message: THROTTLED, retry: true }
		});
		const down = `http://127.0.0.1:${await closedPort()}`;
		expect(await confirm('good:key', down)).toMatchObject({
			status: 503,
			data: { verified: false, message: UNAVAILABLE_MESSAGE, retry: true }
		});
	});
});
