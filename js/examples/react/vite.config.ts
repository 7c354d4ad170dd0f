import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Vite 8.2 and later load the package's `.wasm` files themselves: the build emits each one as
// an asset, with no plugin. The dev server's dependency pre-bundling breaks that import
// (`reading '__wbindgen_externrefs'` of undefined) when portcullis is installed from the
// registry, so it is excluded. The fixed ports match public/config.json and the redirect URI
// in the README.
export default defineConfig({
  plugins: [react()],
  optimizeDeps: { exclude: ['portcullis'] },
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
  preview: { host: '127.0.0.1', port: 5173, strictPort: true },
});
