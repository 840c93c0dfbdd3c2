import { error, redirect } from '@sveltejs/kit';
import { log } from '$lib/server/log';
import { clearSession, loginUrl, requireUser } from '$lib/server/session';
import type { UserPage } from '$lib/types';
import type { PageServerLoad } from './$types';

/** The API's page size (docs/api-contract.md). */
const PAGE_SIZE = 20;

export const load: PageServerLoad = async ({ locals, url, cookies }) => {
	const user = requireUser(locals, url);
	if (!user.is_staff) error(403, 'Only staff members can see the list of users.');

	const raw = url.searchParams.get('page') ?? '1';
	if (!/^[1-9]\d{0,8}$/.test(raw)) error(404, `No page ${JSON.stringify(raw)}.`);
	const page = Number(raw);

	const result = await locals.api.get<UserPage>(`/api/users/?page=${page}`);
	if (!result.ok) {
		if (result.status === 401) {
			// The token is gone (logged out elsewhere): log in again.
			clearSession(cookies);
			redirect(303, loginUrl(url));
		}
		if (result.status === 403) error(403, 'Only staff members can see the list of users.');
		if (result.status === 404) error(404, `No page ${page}.`);
		log.error('api_call_failed', {
			request_id: locals.requestId,
			call: 'GET /api/users/',
			detail: result.detail ?? `HTTP ${result.status}`
		});
		error(503, 'The service is unavailable right now.');
	}

	const { count, next, previous, results } = result.data;
	return {
		users: results,
		count,
		page,
		pages: Math.max(1, Math.ceil(count / PAGE_SIZE)),
		previousPage: previous ? page - 1 : null,
		nextPage: next ? page + 1 : null
	};
};
