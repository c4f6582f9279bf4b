# An app that cannot load: it uses a module that does not exist.
package Broken;

use Nonexistent::Module::ForE2e;

sub echo { return ($_[0]) }

1;
