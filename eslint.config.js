// Lint gate: `npm run lint` must report zero warnings. Type-aware (typed rules read the TS program).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['node_modules', 'dist', 'public/models', 'test-results', 'playwright-report'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.browser, ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['warn', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'warn',
      '@typescript-eslint/no-floating-promises': 'error',
      // Forwarding a caught value (typed unknown) is fine; rejecting with a literal non-Error is not.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      'no-constant-condition': ['warn', { checkLoops: false }],
      // Prettier wraps code at 120 columns but not comments or strings: this keeps those in the limit too.
      'max-len': ['error', { code: 120, ignoreUrls: true }],
    },
  },
  // Plain JavaScript (this file) is outside the TS program: lint it without types.
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
