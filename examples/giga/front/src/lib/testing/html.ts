// Helpers for tests that render components with `svelte/server`.

/** Server-rendered HTML without Svelte's hydration markers (`<!--[-->` and the like). */
export function clean(html: string): string {
	return html.replace(/<!--[\s\S]*?-->/g, '');
}

/** The text inside the first element with this data-testid, tags removed; null if absent. */
export function textByTestId(html: string, testId: string): string | null {
	const source = clean(html);
	const open = new RegExp(`<([a-z][a-z0-9]*)\\b[^>]*\\sdata-testid="${testId}"[^>]*>`).exec(source);
	if (!open) return null;
	const tag = open[1];
	let depth = 1;
	const tags = new RegExp(`<(/?)${tag}\\b[^>]*>`, 'g');
	tags.lastIndex = open.index + open[0].length;
	for (let match = tags.exec(source); match; match = tags.exec(source)) {
		depth += match[1] ? -1 : 1;
		if (depth === 0) {
			const inner = source.slice(open.index + open[0].length, match.index);
			return inner
				.replace(/<[^>]*>/g, ' ')
				.replace(/\s+/g, ' ')
				.trim();
		}
	}
	return null;
}
