const HTML_ESCAPES = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/**
 * Escapes a value for use in HTML text and in double- or single-quoted attribute values.
 *
 * @param {unknown} value
 * @returns {string}
 */
export function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (character) => HTML_ESCAPES[character]);
}

/**
 * Wraps body markup in a complete HTML document. The title is escaped, the body is not.
 *
 * @param {string} title
 * @param {string} body
 * @returns {string}
 */
export function renderPage(title, body) {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(title)} · portcullis test authorization server</title>
  <style>
    body { font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; padding: 0 1rem; }
    label { display: block; margin: 0.75rem 0; }
    input { display: block; width: 100%; padding: 0.4rem; box-sizing: border-box; }
    button { margin-top: 0.75rem; padding: 0.4rem 1rem; }
    .error { color: #b00020; }
  </style>
</head>
<body>
${body}
</body>
</html>
`;
}
