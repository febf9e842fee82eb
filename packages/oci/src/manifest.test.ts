import { describe, expect, it } from 'vitest';
import { digestOf } from './digest.js';
import { OciError, type OciErrorCode } from './errors.js';
import { artifactTypeOf, parseManifest, referencedDescriptors } from './manifest.js';
import { MediaType } from './media-types.js';

const d = (seed: string) => digestOf(seed);
const config = { mediaType: MediaType.OciConfig, digest: d('config'), size: 10 };
const layer = { mediaType: MediaType.OciLayerGzip, digest: d('layer'), size: 20 };
const ociManifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] };
const child = {
  mediaType: MediaType.OciManifest,
  digest: d('child'),
  size: 30,
  platform: { os: 'linux', architecture: 'amd64' },
};
const ociIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [child] };
const dockerManifest = {
  schemaVersion: 2,
  mediaType: MediaType.DockerManifest,
  config: { ...config, mediaType: MediaType.DockerConfig },
  layers: [{ ...layer, mediaType: MediaType.DockerLayerGzip }],
};
const dockerList = {
  schemaVersion: 2,
  mediaType: MediaType.DockerManifestList,
  manifests: [{ ...child, mediaType: MediaType.DockerManifest }],
};
const artifact = {
  schemaVersion: 2,
  mediaType: MediaType.OciManifest,
  artifactType: 'application/vnd.example.signature.v1+json',
  config: { mediaType: MediaType.OciEmpty, digest: digestOf('{}'), size: 2, data: 'e30=' },
  layers: [{ mediaType: 'application/vnd.example.signature.v1+json', digest: d('sig'), size: 5 }],
  subject: { mediaType: MediaType.OciManifest, digest: d('subject'), size: 40 },
};

const bytes = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('parseManifest detection', () => {
  const cases: [string, unknown, string | undefined, 'image' | 'index', string][] = [
    [
      'OCI manifest by Content-Type',
      ociManifest,
      MediaType.OciManifest,
      'image',
      MediaType.OciManifest,
    ],
    [
      'OCI manifest with charset',
      ociManifest,
      `${MediaType.OciManifest}; charset=utf-8`,
      'image',
      MediaType.OciManifest,
    ],
    ['OCI manifest by body', ociManifest, undefined, 'image', MediaType.OciManifest],
    [
      'OCI manifest by body, generic type',
      ociManifest,
      'application/json',
      'image',
      MediaType.OciManifest,
    ],
    [
      'OCI manifest by shape',
      { ...ociManifest, mediaType: undefined },
      undefined,
      'image',
      MediaType.OciManifest,
    ],
    ['OCI index by Content-Type', ociIndex, MediaType.OciIndex, 'index', MediaType.OciIndex],
    [
      'OCI index by shape',
      { schemaVersion: 2, manifests: [child] },
      'application/octet-stream',
      'index',
      MediaType.OciIndex,
    ],
    [
      'index without mediaType, typed by header',
      { schemaVersion: 2, manifests: [] },
      MediaType.DockerManifestList,
      'index',
      MediaType.DockerManifestList,
    ],
    [
      'Docker manifest',
      dockerManifest,
      MediaType.DockerManifest,
      'image',
      MediaType.DockerManifest,
    ],
    ['Docker manifest list', dockerList, undefined, 'index', MediaType.DockerManifestList],
    ['artifact with subject', artifact, MediaType.OciManifest, 'image', MediaType.OciManifest],
  ];
  it.each(cases)('%s', (_name, body, contentType, kind, mediaType) => {
    const parsed = parseManifest(bytes(body), contentType);
    expect(parsed.kind).toBe(kind);
    expect(parsed.mediaType).toBe(mediaType);
  });
});

describe('parseManifest contents', () => {
  it('returns config, layers and subject', () => {
    const parsed = parseManifest(bytes(artifact));
    expect(parsed.kind).toBe('image');
    if (parsed.kind !== 'image') return;
    expect(parsed.config.digest).toBe(digestOf('{}'));
    expect(parsed.layers).toHaveLength(1);
    expect(parsed.subject?.digest).toBe(d('subject'));
    expect(parsed.artifactType).toBe('application/vnd.example.signature.v1+json');
    expect(artifactTypeOf(parsed)).toBe('application/vnd.example.signature.v1+json');
    expect(referencedDescriptors(parsed).map((x) => x.digest)).toEqual([digestOf('{}'), d('sig')]);
  });

  it('returns the child manifests of an index', () => {
    const parsed = parseManifest(bytes(ociIndex));
    expect(parsed.kind).toBe('index');
    if (parsed.kind !== 'index') return;
    expect(parsed.manifests[0]?.platform).toEqual({ os: 'linux', architecture: 'amd64' });
  });

  it('keeps unknown fields', () => {
    const parsed = parseManifest(bytes({ ...ociManifest, extra: { a: 1 } }));
    expect(parsed.manifest.extra).toEqual({ a: 1 });
  });

  it('falls back to config media type', () => {
    const parsed = parseManifest(bytes({ ...artifact, artifactType: undefined }));
    expect(artifactTypeOf(parsed)).toBe(MediaType.OciEmpty);
  });
});

describe('parseManifest rejections', () => {
  const schema1 = { schemaVersion: 1, name: 'a', tag: 'b', fsLayers: [], history: [] };
  const cases: [string, Uint8Array, string | undefined, OciErrorCode, string][] = [
    ['schema 1 body', bytes(schema1), undefined, 'UNSUPPORTED_MEDIA_TYPE', 'schema 1'],
    [
      'schema 1 Content-Type',
      bytes(ociManifest),
      MediaType.DockerManifestV1Signed,
      'UNSUPPORTED_MEDIA_TYPE',
      'schema 1',
    ],
    [
      'schema 1 media type in body',
      bytes({ ...ociManifest, mediaType: MediaType.DockerManifestV1 }),
      undefined,
      'UNSUPPORTED_MEDIA_TYPE',
      'schema 1',
    ],
    [
      'unknown Content-Type',
      bytes(ociManifest),
      'application/vnd.oci.artifact.manifest.v1+json',
      'UNSUPPORTED_MEDIA_TYPE',
      'artifact.manifest',
    ],
    [
      'unknown body mediaType',
      bytes({ ...ociManifest, mediaType: 'application/x-foo' }),
      undefined,
      'UNSUPPORTED_MEDIA_TYPE',
      'x-foo',
    ],
    [
      'header and body disagree',
      bytes(ociManifest),
      MediaType.OciIndex,
      'INVALID_MANIFEST',
      'differs',
    ],
    ['not JSON', Buffer.from('{nope'), undefined, 'INVALID_MANIFEST', 'not valid JSON'],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), undefined, 'INVALID_MANIFEST', 'UTF-8'],
    ['JSON array', bytes([1]), undefined, 'INVALID_MANIFEST', 'not a JSON object'],
    ['no shape', bytes({ schemaVersion: 2 }), undefined, 'INVALID_MANIFEST', 'neither'],
    [
      'schemaVersion 3',
      bytes({ ...ociManifest, schemaVersion: 3 }),
      undefined,
      'INVALID_MANIFEST',
      'schemaVersion',
    ],
    [
      'bad layer digest',
      bytes({ ...ociManifest, layers: [{ ...layer, digest: 'sha256:xyz' }] }),
      undefined,
      'INVALID_MANIFEST',
      'layers.0.digest',
    ],
    [
      'negative size',
      bytes({ ...ociManifest, config: { ...config, size: -1 } }),
      undefined,
      'INVALID_MANIFEST',
      'config.size',
    ],
    [
      'fractional size',
      bytes({ ...ociManifest, config: { ...config, size: 1.5 } }),
      undefined,
      'INVALID_MANIFEST',
      'config.size',
    ],
    [
      'missing layers',
      bytes({ ...ociManifest, layers: undefined }),
      undefined,
      'INVALID_MANIFEST',
      'layers',
    ],
    [
      'bad media type',
      bytes({ ...ociManifest, config: { ...config, mediaType: 'nope' } }),
      undefined,
      'INVALID_MANIFEST',
      'config.mediaType',
    ],
    [
      'bad data field',
      bytes({ ...ociManifest, config: { ...config, data: '%%%' } }),
      undefined,
      'INVALID_MANIFEST',
      'config.data',
    ],
    [
      'index entry without digest',
      bytes({ ...ociIndex, manifests: [{ mediaType: MediaType.OciManifest, size: 1 }] }),
      undefined,
      'INVALID_MANIFEST',
      'manifests.0.digest',
    ],
  ];
  it.each(cases)('rejects %s', (_name, body, contentType, code, text) => {
    let caught: unknown;
    try {
      parseManifest(body, contentType);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(OciError);
    expect((caught as OciError).code).toBe(code);
    expect((caught as OciError).message).toContain(text);
  });

  it('rejects bodies over the size cap', () => {
    const body = bytes(ociManifest);
    expect(() => parseManifest(body, undefined, { maxBytes: body.length - 1 })).toThrow(
      expect.objectContaining({ code: 'MANIFEST_TOO_LARGE' }),
    );
    expect(parseManifest(body, undefined, { maxBytes: body.length }).kind).toBe('image');
  });
});
