// Defaults: Svelte 5 with TypeScript in <script lang="ts"> (types stripped, no preprocessor needed).
export default {};
