// CSS imported for its side effect: Vite bundles it into a hashed stylesheet.
declare module '*.css';
