// Merged into @jupyter/builder's configuration. The builder exposes the extension's entry by
// its absolute path, so a deterministic (hashed) id of the container entry module differs
// from one checkout's path to another's; ids in module order are the same in every checkout,
// which lets a test compare the committed build with a fresh one.
module.exports = {
  optimization: {
    moduleIds: 'natural'
  }
};
