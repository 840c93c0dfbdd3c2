import { env } from '$env/dynamic/public';
import type { LayoutServerLoad } from './$types';

export const load: LayoutServerLoad = ({ locals }) => {
	const user = locals.user;
	return {
		projectName: env.PUBLIC_PROJECT_NAME || 'App',
		// Only what the header needs goes to the browser.
		user: user ? { username: user.username, is_staff: user.is_staff } : null
	};
};
