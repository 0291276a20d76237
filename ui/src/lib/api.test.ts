import { describe, expect, it } from 'vitest';
import { artifactUrl } from './api';

describe('api', () => {
  it('percent-encodes artifact download URLs', () => {
    expect(artifactUrl('01JB', 'dist')).toBe('/api/v1/builds/01JB/artifacts/dist');
    expect(artifactUrl('01JB', 'test report #2')).toBe('/api/v1/builds/01JB/artifacts/test%20report%20%232');
    expect(artifactUrl('01JB', 'a%b&c')).toBe('/api/v1/builds/01JB/artifacts/a%25b%26c');
  });
});
