import { requireUser } from '$lib/server/session';
import type { PageServerLoad } from './$types';

export const load: PageServerLoad = ({ locals, url }) => {
	return { me: requireUser(locals, url) };
};
