# An echo app in Perl: the native-server's `echo` and the zeromq-server's `upper`. Every sub
# of the package is an event of the same name (see adapters/perl/README.md).
package Echo;

use strict;
use warnings;
use Cocaine qw(streaming error);

sub echo { my ($request) = @_; return ($request) }    # plain: the whole request in, chunks out

sub upper { my ($request) = @_; return (uc $request) }

sub count { my ($request) = @_; return map {"$_"} 1 .. ($request || 3) }

sub forbidden { error(403, 'go away') }               # fails the job with 403 "go away"

streaming 'stream';
sub stream {                                           # streaming: chunks in as they come
    my ($request, $response) = @_;
    while (defined(my $chunk = $request->next)) {
        $response->write($chunk);
    }
}

1;
