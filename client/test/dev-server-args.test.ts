import { keelSearchAttributes } from '@keel/workflows/search-attributes';
import { describe, expect, test } from 'vitest';
import { devServerArgs } from '../src/dev.ts';

describe('dev server arguments', () => {
  test("register every keel search attribute with the CLI's type names", () => {
    const args = devServerArgs({ ip: '127.0.0.1', port: 7233, ui: 8233 });
    const registered = args.filter((_, i) => args[i - 1] === '--search-attribute');
    expect(registered).toEqual([
      'KeelKind=Keyword',
      'KeelJob=Keyword',
      'KeelStudy=Keyword',
      'KeelStatus=Keyword',
      'KeelBestValue=Double',
      'KeelTrialsDone=Int',
    ]);
    expect(registered).toHaveLength(keelSearchAttributes.length);
  });

  test('keep state in the db file when given, and serve the UI unless headless', () => {
    const withUi = devServerArgs({ ip: '127.0.0.1', port: 7233, ui: 8233, dbFile: '/tmp/x/temporal.db' });
    expect(withUi).toEqual(expect.arrayContaining(['--ui-port', '8233', '--db-filename', '/tmp/x/temporal.db']));
    expect(withUi).not.toContain('--headless');
    const headless = devServerArgs({ ip: '127.0.0.1', port: 7300, ui: 'headless' });
    expect(headless).toContain('--headless');
    expect(headless).not.toContain('--ui-port');
    expect(headless).not.toContain('--db-filename');
  });
});
