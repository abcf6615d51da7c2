// Where in the script an error happened, from the server's traceback (frames of the script are
// reported as File "<script>", line N) or, for a syntax error, from its sentence ("(line N)").

const FRAME = /File "<script>", line (\d+)/g;
const SENTENCE_LINE = /\(line (\d+)\)\s*$/;

// The innermost frame in the script: the line the user most likely has to fix.
export function errorLine(trace: string | undefined, error: string | undefined): number | null {
  let line: number | null = null;
  for (const match of (trace ?? "").matchAll(FRAME)) line = Number(match[1]);
  if (line === null && error) {
    const match = SENTENCE_LINE.exec(error);
    if (match) line = Number(match[1]);
  }
  return line !== null && line > 0 ? line : null;
}
