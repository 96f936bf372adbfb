/** The Hugging Face Hub: downloads into the cache shared with Python (huggingface_hub's layout). */
export { resolveModelDir, downloadModel, parseHubSpec, type HubOptions, type HubSpec, type HubLayout, type DownloadedModel } from './resolve.js';
export { hubCacheDir, hubEndpoint, hubToken, repoFolderName, RepoCache } from './cache.js';
export { fileMetadata, normalizeEtag, resolveUrl, HubHttpError, HubNetworkError, type FileMetadata } from './download.js';
