export { validateConstraint } from './validate.js';
