// Renders card markdown the way the CDS Hooks sandbox does (src/components/CardList/card-list.jsx:
// <ReactMarkdown remarkPlugins={[remarkGfm]} rehypePlugins={[rehypeRaw]}>) and prints, for each
// input, the elements of the resulting HTML tree with their attributes.
// argv[2]: a file holding a JSON array of markdown strings; stdout: a JSON array of [tagName, properties]
// lists. (A file, not stdin: reading a large piped stdin synchronously fails with EAGAIN.)
import {readFileSync} from 'node:fs';
import rehypeRaw from 'rehype-raw';
import remarkGfm from 'remark-gfm';
import remarkParse from 'remark-parse';
import remarkRehype from 'remark-rehype';
import {unified} from 'unified';

const processor = unified().use(remarkParse).use(remarkGfm)
  .use(remarkRehype, {allowDangerousHtml: true}).use(rehypeRaw);

function elements(node, out) {
  if (node.type === 'element') out.push([node.tagName, node.properties || {}]);
  for (const child of node.children || []) elements(child, out);
  return out;
}

const inputs = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const trees = inputs.map((markdown) => elements(processor.runSync(processor.parse(markdown)), []));
process.stdout.write(JSON.stringify(trees));
