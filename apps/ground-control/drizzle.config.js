import { defineConfig } from 'drizzle-kit';

// Run `pnpm exec drizzle-kit generate --name <what changed>` in apps/ground-control after a
// change to src/db/schema.ts; it writes the next migration into drizzle/.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './drizzle',
});
