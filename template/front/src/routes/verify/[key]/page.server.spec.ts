import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiClient } from '$lib/server/api';
import { UNAVAILABLE_MESSAGE } from '$lib/server/forms';
import { closedPort, json, startServer, type TestServer } from '$lib/testing/server';
import { load } from './+page.server';

const USED = 'This verification link is invalid, already used or expired. Ask for a new one.';
let server: TestServer;

beforeAll(async () => {
	server = await startServer({
		'POST /api/auth/email/verify/': (req, res) =>
			JSON.parse(req.body).key === 'good:key'
				? json(res, 200, { detail: 'Your email address ada@example.com is verified.' })
				: json(res, 400, { non_field_errors: [USED] })
	});
});

afterAll(() => server.close());

const open = (key: string, apiUrl = server.url) =>
	load({
		params: { key },
		locals: { api: createApiClient({ baseUrl: apiUrl }), user: null, apiUnavailable: false }
	} as never);

describe('verify page', () => {
	it("sends the link's key to the API on load and shows its answer", async () => {
		expect(await open('good:key')).toEqual({
			verified: true,
			message: 'Your email address ada@example.com is verified.'
		});
		expect(JSON.parse(server.requests.at(-1)!.body)).toEqual({ key: 'good:key' });
	});

	it('shows why a used or expired link failed', async () => {
		expect(await open('used:key')).toEqual({ verified: false, message: USED });
	});

	it('says the service is unavailable when the API does not answer', async () => {
		const down = `http://127.0.0.1:${await closedPort()}`;
		expect(await open('good:key', down)).toEqual({ verified: false, message: UNAVAILABLE_MESSAGE });
	});
});
