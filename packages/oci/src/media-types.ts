/** Media types of the OCI image-spec and of Docker image manifest v2 schema 2. */
export const MediaType = {
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DockerManifestV1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerManifestV1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export type MediaTypeValue = (typeof MediaType)[keyof typeof MediaType];

export type IndexMediaType = typeof MediaType.OciIndex | typeof MediaType.DockerManifestList;
export type ImageManifestMediaType = typeof MediaType.OciManifest | typeof MediaType.DockerManifest;
export type ManifestMediaType = IndexMediaType | ImageManifestMediaType;

export const INDEX_MEDIA_TYPES: readonly IndexMediaType[] = [
  MediaType.OciIndex,
  MediaType.DockerManifestList,
];
export const IMAGE_MANIFEST_MEDIA_TYPES: readonly ImageManifestMediaType[] = [
  MediaType.OciManifest,
  MediaType.DockerManifest,
];
export const MANIFEST_MEDIA_TYPES: readonly ManifestMediaType[] = [
  ...INDEX_MEDIA_TYPES,
  ...IMAGE_MANIFEST_MEDIA_TYPES,
];
export const SCHEMA1_MEDIA_TYPES: readonly string[] = [
  MediaType.DockerManifestV1,
  MediaType.DockerManifestV1Signed,
];

/**
 * `Accept` value for every manifest HEAD and GET. docker-registry 2.8 returns 404 for OCI
 * content (even by digest) unless the request accepts its media type, so all four are sent.
 */
export const MANIFEST_ACCEPT = [
  MediaType.OciIndex,
  MediaType.OciManifest,
  MediaType.DockerManifestList,
  MediaType.DockerManifest,
].join(', ');

export function isManifestMediaType(value: string): value is ManifestMediaType {
  return (MANIFEST_MEDIA_TYPES as readonly string[]).includes(value);
}

export function isIndexMediaType(value: string): value is IndexMediaType {
  return (INDEX_MEDIA_TYPES as readonly string[]).includes(value);
}

export function isImageManifestMediaType(value: string): value is ImageManifestMediaType {
  return (IMAGE_MANIFEST_MEDIA_TYPES as readonly string[]).includes(value);
}

/** Returns the media type of a `Content-Type` value without parameters, lowercased. */
export function essenceOf(contentType: string): string {
  const semicolon = contentType.indexOf(';');
  return (semicolon >= 0 ? contentType.slice(0, semicolon) : contentType).trim().toLowerCase();
}
