# An app with a syntax error.
package Broken;

sub echo { return ($_[0]) 

1;
