import { defineConfig } from 'vitest/config';
import adapter from '@sveltejs/adapter-node';
import { sveltekit } from '@sveltejs/kit/vite';
import type { KitConfig } from '@sveltejs/kit';

// The dev server, in the container (`vite dev --host 0.0.0.0`, see Dockerfile)
// or on the host (`npm run dev`, loopback only).
const server = {
	port: 5173,
	strictPort: true,
	// Vite answers only to these Host headers: the browser's and this service's
	// alias on the shared Docker network.
	allowedHosts: ['localhost', 'giga-frontend'],
	// Only where file-change events do not reach the container (some Docker
	// Desktop setups): VITE_USE_POLLING=true in .env.
	watch: process.env.VITE_USE_POLLING === 'true' ? { usePolling: true } : undefined
};

/**
 * The Content-Security-Policy header of every page. 'auto': SvelteKit adds a
 * nonce for its inline hydration script to script-src (a hash on prerendered
 * pages), so no inline script runs without one. `vite dev` also gets
 * 'unsafe-inline' in style-src from SvelteKit, for the styles it injects.
 */
function csp(devServer: boolean): KitConfig['csp'] {
	return {
		mode: 'auto',
		directives: {
			'default-src': ['self'],
			'script-src': ['self'],
			'style-src': ['self'],
			// Style attributes only (not <style> elements): SvelteKit's route
			// announcer is hidden by one. They cannot run script.
			'style-src-attr': ['unsafe-inline'],
			// Vite inlines small assets (the favicon) as data: URLs.
			'img-src': ['self', 'data:'],
			// The dev server's client pings it from a blob: worker.
			'worker-src': devServer ? ['self', 'blob:'] : ['self'],
			'object-src': ['none'],
			'base-uri': ['self'],
			'form-action': ['self'],
			'frame-ancestors': ['none']
		}
	};
}

export default defineConfig(({ command, isPreview }) => ({
	plugins: [
		sveltekit({
			compilerOptions: {
				// Force runes mode for the project, except for libraries. Can be removed in svelte 6.
				runes: ({ filename }) =>
					filename.split(/[/\\]/).includes('node_modules') ? undefined : true
			},
			adapter: adapter(),
			// svelte-check type-checks the Playwright journeys too (strict).
			typescript: {
				config: (config) => {
					config.include.push('../e2e/**/*.ts', '../playwright.config.ts');
				}
			},
			csp: csp(command === 'serve' && !isPreview)
		})
	],
	server,
	preview: { port: server.port, strictPort: true, allowedHosts: server.allowedHosts },
	test: {
		expect: { requireAssertions: true },
		// `npm run test:coverage` (CI runs it): V8's coverage of the app's own
		// code, counting every file, also those no test imports. It fails under
		// these thresholds, set a little below what the shipped tests reach
		// (statements 78 %, branches 72 %, functions 82 %, lines 78 %): raise them
		// as tests are added.
		coverage: {
			provider: 'v8',
			include: ['src/**/*.{ts,svelte}'],
			exclude: ['src/**/*.spec.ts', 'src/**/*.d.ts', 'src/lib/testing/**'],
			reportsDirectory: 'coverage',
			// The table on the terminal and in coverage/coverage.txt (CI's run
			// summary); the totals in coverage/coverage-summary.json.
			reporter: ['text', ['text', { file: 'coverage.txt' }], 'json-summary'],
			thresholds: { statements: 76, branches: 70, functions: 80, lines: 76 }
		},
		projects: [
			{
				extends: './vite.config.ts',
				test: {
					name: 'server',
					environment: 'node',
					include: ['src/**/*.{test,spec}.{js,ts}'],
					exclude: ['src/**/*.svelte.{test,spec}.{js,ts}']
				}
			}
		]
	}
}));
