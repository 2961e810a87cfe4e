const { makeConfig } = require("./make-config");

module.exports = makeConfig();
