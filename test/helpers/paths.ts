import { join } from 'node:path';

/** ../shared/data beside the repository: present on developer machines and in CI, absent in a user's fresh clone. */
export const SHARED_DATA = join(import.meta.dirname, '../../../shared/data');
